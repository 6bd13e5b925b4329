//! The buffer's own I/O thread: the only place that touches its segment files.
//!
//! Writes, fsyncs, rolls, reads, deletions and ledger writes run here, in order, never on the
//! async runtime's workers or inside an acknowledgement callback: an fsync on a slow volume
//! holds up this buffer, not every other component. The async side sends [`Op`]s over a channel
//! and awaits the answers; acknowledgements send theirs without waiting. What the async side
//! reads without asking (the gauge, whether everything was read, room freed, something new to
//! read) the thread publishes in [`View`].
//!
//! When the last [`Disk`] handle goes (after the sink's final acknowledgements), the thread
//! writes the ledger once more and ends, and the drop waits for it: a clean stop resends
//! nothing.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{oneshot, Notify};

use super::segments::{AppendError, Damage, ReadRecord, RecordId, Segments};
use crate::telemetry::ComponentMetrics;

/// What the thread publishes for the async side.
pub(super) struct View {
    /// Bytes were freed (acknowledged segments deleted, or the oldest dropped).
    pub space: Notify,
    /// Something new to read: appended, or a failed record to read again.
    pub readable: Notify,
    /// Nothing on disk is unread.
    read_out: AtomicBool,
    /// The reader holds a record it has not yet handed to the sink.
    pub reader_holding: AtomicBool,
    /// The largest payload one record may carry.
    pub max_payload_len: usize,
}

impl View {
    /// Nothing written to disk waits to be handed to the sink.
    pub fn read_out(&self) -> bool {
        self.read_out.load(Ordering::Acquire) && !self.reader_holding.load(Ordering::Acquire)
    }
}

/// The outcome of an append, with the payload back to try again when the buffer was full.
pub(super) type Appended = (Result<io::Result<()>, AppendError>, Vec<u8>);

enum Op {
    Append {
        payload: Vec<u8>,
        events: u32,
        reply: oneshot::Sender<Appended>,
    },
    /// `data`: fsync the active segment too, not only the directory and ledger.
    Sync {
        data: bool,
        reply: oneshot::Sender<io::Result<()>>,
    },
    Next {
        reply: oneshot::Sender<(io::Result<Option<ReadRecord>>, Damage)>,
    },
    /// A record's acknowledgement: `done` releases it, else it is read again.
    Resolve { id: RecordId, done: bool },
    DropOldest {
        reply: oneshot::Sender<io::Result<u64>>,
    },
}

fn gone() -> io::Error {
    io::Error::other("the disk buffer's I/O thread is gone")
}

/// The async side's handle on the thread.
pub(super) struct Disk {
    ops: Option<mpsc::Sender<Op>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub view: Arc<View>,
}

impl Disk {
    /// Starts the thread that owns `segments`.
    pub fn start(segments: Segments, metrics: ComponentMetrics) -> io::Result<Disk> {
        let view = Arc::new(View {
            space: Notify::new(),
            readable: Notify::new(),
            read_out: AtomicBool::new(segments.is_read_out()),
            reader_holding: AtomicBool::new(false),
            max_payload_len: segments.max_payload_len(),
        });
        let (ops, received) = mpsc::channel();
        let published = view.clone();
        let thread = std::thread::Builder::new()
            .name(format!("buffer-{}", metrics.name))
            .spawn(move || serve(segments, &received, &published, &metrics))?;
        Ok(Disk {
            ops: Some(ops),
            thread: Mutex::new(Some(thread)),
            view,
        })
    }

    fn send(&self, op: Op) -> bool {
        self.ops.as_ref().is_some_and(|ops| ops.send(op).is_ok())
    }

    async fn ask<T>(&self, op: impl FnOnce(oneshot::Sender<T>) -> Op) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        if !self.send(op(reply)) {
            return None;
        }
        answer.await.ok()
    }

    pub async fn append(&self, payload: Vec<u8>, events: u32) -> Appended {
        let Some(ops) = &self.ops else {
            return (Ok(Err(gone())), payload);
        };
        let (reply, answer) = oneshot::channel();
        let op = Op::Append {
            payload,
            events,
            reply,
        };
        if let Err(mpsc::SendError(op)) = ops.send(op) {
            let payload = match op {
                Op::Append { payload, .. } => payload,
                _ => Vec::new(),
            };
            return (Ok(Err(gone())), payload);
        }
        // The thread went away with the payload: a failed write, never retried.
        answer
            .await
            .unwrap_or_else(|_| (Ok(Err(gone())), Vec::new()))
    }

    pub async fn sync(&self, data: bool) -> io::Result<()> {
        self.ask(|reply| Op::Sync { data, reply })
            .await
            .unwrap_or_else(|| Err(gone()))
    }

    pub async fn next(&self) -> (io::Result<Option<ReadRecord>>, Damage) {
        self.ask(|reply| Op::Next { reply })
            .await
            .unwrap_or_else(|| (Err(gone()), Damage::default()))
    }

    /// Never waits: acknowledgements call it.
    pub fn resolve(&self, id: RecordId, done: bool) {
        self.send(Op::Resolve { id, done });
    }

    pub async fn drop_oldest(&self) -> io::Result<u64> {
        self.ask(|reply| Op::DropOldest { reply })
            .await
            .unwrap_or_else(|| Err(gone()))
    }
}

/// The thread writes the ledger as it ends; wait for it, so that a process exiting right after
/// finds it written.
impl Drop for Disk {
    fn drop(&mut self) {
        drop(self.ops.take());
        let thread = self.thread.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

fn serve(segments: Segments, ops: &mpsc::Receiver<Op>, view: &View, metrics: &ComponentMetrics) {
    let mut segments = segments;
    while let Ok(op) = ops.recv() {
        match op {
            Op::Append {
                payload,
                events,
                reply,
            } => {
                let appended = segments.append(&payload, events);
                if matches!(appended, Ok(Ok(()))) {
                    view.read_out.store(false, Ordering::Release);
                    view.readable.notify_one();
                }
                let _ = reply.send((appended, payload));
            }
            Op::Sync { data, reply } => {
                let synced = if data {
                    segments.sync()
                } else {
                    segments.sync_metadata()
                };
                let _ = reply.send(synced);
            }
            Op::Next { reply } => {
                let mut damage = Damage::default();
                let next = segments.next(&mut damage);
                if matches!(next, Ok(Some(_))) {
                    view.reader_holding.store(true, Ordering::Release);
                }
                view.read_out
                    .store(segments.is_read_out(), Ordering::Release);
                let _ = reply.send((next, damage));
            }
            Op::Resolve { id, done } => {
                let freed = segments.resolve(id, done);
                if !done {
                    view.read_out.store(false, Ordering::Release);
                    view.readable.notify_one();
                }
                if freed > 0 {
                    view.space.notify_one();
                }
            }
            Op::DropOldest { reply } => {
                let dropped = segments.drop_oldest();
                view.read_out
                    .store(segments.is_read_out(), Ordering::Release);
                view.space.notify_one();
                let _ = reply.send(dropped);
            }
        }
        metrics
            .buffer_bytes
            .set(segments.unacknowledged_bytes() as i64);
    }
    // The last handle is gone: the sink's final acknowledgements are in.
    if let Err(e) = segments.sync_metadata() {
        metrics.error("buffer_sync");
        tracing::error!(component = %metrics.name, error = %e, "cannot write the disk buffer's ledger at stop; acknowledged records will be sent again");
    }
}
