//! Delivery acknowledgements: how a source learns that what it emitted is safe downstream.
//!
//! A source makes one [`Ack`] per batch it emits, with a callback. Every holder of the batch (one
//! per sink after fan-out, one per merged batch after batching) holds a [`Share`] of it; a share is
//! finished by [`Share::deliver`] or [`Share::reject`]. A share dropped unfinished (a sink that shut
//! down before sending, a task that died) counts as failed: nothing is ever acknowledged by
//! accident. When the last share is gone the callback runs once with the combined status:
//! `Failed` if any share failed, else `Rejected` if any was refused for good, else `Delivered`.
//!
//! File sources advance checkpoints on `Delivered` and `Rejected` (retrying a permanent refusal
//! would never succeed; it was counted and dead-lettered where it was refused) and re-read on
//! `Failed`. The OTLP receiver answers its client only when the status is known.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// The outcome of delivering one batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AckStatus {
    /// Every sink's backend accepted it (or it is durable in a buffer that will deliver it).
    Delivered = 0,
    /// A backend refused it for good; it was counted and dead-lettered where configured.
    Rejected = 1,
    /// It was not delivered and may be sent again (shutdown, crash, dropped in flight).
    Failed = 2,
}

impl AckStatus {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => AckStatus::Delivered,
            1 => AckStatus::Rejected,
            _ => AckStatus::Failed,
        }
    }

    /// Whether a source may forget what the batch held.
    pub fn is_final(self) -> bool {
        matches!(self, AckStatus::Delivered | AckStatus::Rejected)
    }
}

type Callback = Box<dyn FnOnce(AckStatus) + Send>;

struct Inner {
    /// The worst status reported so far.
    status: AtomicU8,
    callback: Mutex<Option<Callback>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let status = AckStatus::from_u8(self.status.load(Ordering::Acquire));
        let callback = match self.callback.get_mut() {
            Ok(cb) => cb.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(cb) = callback {
            cb(status);
        }
    }
}

/// Creates the first share of a new acknowledgement; `callback` runs once when every share is
/// finished or dropped.
pub struct Ack;

impl Ack {
    #[allow(clippy::new_ret_no_self)]
    pub fn new(callback: impl FnOnce(AckStatus) + Send + 'static) -> Share {
        Share {
            inner: Arc::new(Inner {
                status: AtomicU8::new(AckStatus::Delivered as u8),
                callback: Mutex::new(Some(Box::new(callback))),
            }),
            finished: false,
        }
    }

    /// A share with a callback that resolves a oneshot channel, for async waiters.
    pub fn channel() -> (Share, tokio::sync::oneshot::Receiver<AckStatus>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let share = Ack::new(move |status| {
            let _ = tx.send(status);
        });
        (share, rx)
    }
}

/// One holder's part of an acknowledgement.
pub struct Share {
    inner: Arc<Inner>,
    finished: bool,
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("finished", &self.finished)
            .finish()
    }
}

impl Share {
    fn finish(mut self, status: AckStatus) {
        self.inner.status.fetch_max(status as u8, Ordering::AcqRel);
        self.finished = true;
    }

    /// This holder delivered its copy.
    pub fn deliver(self) {
        self.finish(AckStatus::Delivered)
    }

    /// This holder's backend refused its copy for good.
    pub fn reject(self) {
        self.finish(AckStatus::Rejected)
    }

    /// This holder could not deliver its copy; the source should send it again.
    pub fn fail(self) {
        self.finish(AckStatus::Failed)
    }

    /// A new share of the same acknowledgement (for fan-out).
    pub fn split(&self) -> Share {
        Share {
            inner: self.inner.clone(),
            finished: false,
        }
    }
}

impl Drop for Share {
    fn drop(&mut self) {
        if !self.finished {
            self.inner
                .status
                .fetch_max(AckStatus::Failed as u8, Ordering::AcqRel);
        }
    }
}

/// The shares a batch holds: one per source batch merged into it.
#[derive(Debug, Default)]
pub struct Acks(Vec<Share>);

impl Acks {
    pub fn none() -> Self {
        Acks(Vec::new())
    }

    pub fn one(share: Share) -> Self {
        Acks(vec![share])
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn merge(&mut self, mut other: Acks) {
        self.0.append(&mut other.0);
    }

    pub fn split(&self) -> Acks {
        Acks(self.0.iter().map(Share::split).collect())
    }

    pub fn deliver(self) {
        self.0.into_iter().for_each(Share::deliver)
    }

    pub fn reject(self) {
        self.0.into_iter().for_each(Share::reject)
    }

    pub fn fail(self) {
        self.0.into_iter().for_each(Share::fail)
    }

    /// Finishes every share with `status`.
    pub fn finish(self, status: AckStatus) {
        match status {
            AckStatus::Delivered => self.deliver(),
            AckStatus::Rejected => self.reject(),
            AckStatus::Failed => self.fail(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn recorder() -> (Share, Arc<Mutex<Vec<AckStatus>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let share = Ack::new(move |st| s.lock().unwrap().push(st));
        (share, seen)
    }

    #[test]
    fn resolves_once_after_every_share_finished() {
        let (a, seen) = recorder();
        let b = a.split();
        let c = a.split();
        a.deliver();
        b.deliver();
        assert!(
            seen.lock().unwrap().is_empty(),
            "must wait for the last share"
        );
        c.deliver();
        assert_eq!(*seen.lock().unwrap(), vec![AckStatus::Delivered]);
    }

    #[test]
    fn worst_status_wins() {
        let (a, seen) = recorder();
        let b = a.split();
        b.reject();
        a.deliver();
        assert_eq!(*seen.lock().unwrap(), vec![AckStatus::Rejected]);

        let (a, seen) = recorder();
        let b = a.split();
        a.fail();
        b.reject();
        assert_eq!(*seen.lock().unwrap(), vec![AckStatus::Failed]);
    }

    #[test]
    fn a_dropped_share_counts_as_failed() {
        let (a, seen) = recorder();
        let b = a.split();
        a.deliver();
        drop(b);
        assert_eq!(*seen.lock().unwrap(), vec![AckStatus::Failed]);
    }

    #[test]
    fn callback_runs_exactly_once() {
        let count = Arc::new(AtomicUsize::new(0));
        let c = count.clone();
        let a = Ack::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
        });
        let shares: Vec<_> = (0..10).map(|_| a.split()).collect();
        a.deliver();
        shares.into_iter().for_each(Share::deliver);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
