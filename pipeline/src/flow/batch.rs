//! A batch: events of one signal, their estimated size, and the acknowledgements they carry.
//!
//! Batches are the unit that moves through queues; events never travel one by one. The size is
//! computed once when the batch is made and is what queues and batchers are bounded by.
//!
//! A batch may be *awaited*: a sender is waiting for its acknowledgement to answer its own
//! client (the OTLP receiver). Batchers flush such a batch as soon as nothing more is queued,
//! so the round trip is the backend's, not a batch timer's ([`crate::flow::batcher`]).
//!
//! A batch counts its size in the process's memory estimate ([`crate::memory::Held`]) from
//! when it is made until it is dropped, wherever it is then: a queue, a batcher, a request in
//! flight, a retry.

use crate::flow::ack::Acks;
use crate::flow::event::{ByteSize, Events, LogEvent, Metric, Span};
use crate::memory::Held;

#[derive(Debug)]
pub struct Batch {
    pub events: Events,
    pub acks: Acks,
    byte_size: usize,
    /// The batch's share of the memory estimate (released when dropped; a sink that takes the
    /// events apart keeps it until the request is done).
    pub(crate) held: Held,
    /// A sender waits for its acknowledgement (see the module doc).
    pub awaited: bool,
}

impl Batch {
    pub fn new(events: Events, acks: Acks) -> Self {
        let byte_size = events.byte_size();
        Self::with_size(events, acks, byte_size)
    }

    /// A batch whose size the caller already knows (sources that count bytes as they read).
    pub fn with_size(events: Events, acks: Acks, byte_size: usize) -> Self {
        Self {
            events,
            acks,
            byte_size,
            held: Held::new(byte_size),
            awaited: false,
        }
    }

    /// Marks the batch as one a sender waits on.
    pub fn awaited(mut self) -> Self {
        self.awaited = true;
        self
    }

    pub fn logs(events: Vec<LogEvent>, acks: Acks) -> Self {
        Self::new(Events::Logs(events), acks)
    }

    pub fn metrics(events: Vec<Metric>, acks: Acks) -> Self {
        Self::new(Events::Metrics(events), acks)
    }

    pub fn spans(events: Vec<Span>, acks: Acks) -> Self {
        Self::new(Events::Spans(events), acks)
    }

    pub fn byte_size(&self) -> usize {
        self.byte_size
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// A copy for a second sink: the events are cloned, the acknowledgement is shared.
    pub fn split(&self) -> Batch {
        let mut copy = Batch::with_size(self.events.clone(), self.acks.split(), self.byte_size);
        copy.awaited = self.awaited;
        copy
    }

    /// Merges `other` in if it carries the same signal; gives it back otherwise.
    pub fn merge(&mut self, other: Batch) -> Result<(), Batch> {
        let Batch {
            events,
            acks,
            byte_size,
            held,
            awaited,
        } = other;
        match self.events.append(events) {
            Ok(()) => {
                self.acks.merge(acks);
                self.byte_size += byte_size;
                self.held.merge(held);
                self.awaited |= awaited;
                Ok(())
            }
            Err(events) => Err(Batch {
                events,
                acks,
                byte_size,
                held,
                awaited,
            }),
        }
    }
}
