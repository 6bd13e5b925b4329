//! Shutdown in two steps: `stop` asks sources to stop taking input (queues then drain and sinks
//! flush); `abort`, when the drain deadline passes, tells sinks to stop retrying and hand back what
//! they still hold as failed (it is re-read or re-sent on the next start). Checkpoints are written
//! last, after both.

use tokio::sync::watch;

/// The side that triggers.
#[derive(Debug)]
pub struct ShutdownTrigger {
    stop: watch::Sender<bool>,
    abort: watch::Sender<bool>,
}

/// The side that listens; cheap to clone.
#[derive(Clone, Debug)]
pub struct Shutdown {
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (stop_tx, stop_rx) = watch::channel(false);
        let (abort_tx, abort_rx) = watch::channel(false);
        (
            ShutdownTrigger {
                stop: stop_tx,
                abort: abort_tx,
            },
            Shutdown {
                stop: stop_rx,
                abort: abort_rx,
            },
        )
    }

    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub fn abort(&self) {
        self.stop.send_replace(true);
        self.abort.send_replace(true);
    }
}

impl Shutdown {
    /// A signal that never fires, for tests and benches.
    pub fn never() -> Shutdown {
        let (t, s) = ShutdownTrigger::new();
        std::mem::forget(t);
        s
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    pub fn is_aborted(&self) -> bool {
        *self.abort.borrow()
    }

    /// Resolves when sources should stop.
    pub async fn stopped(&self) {
        let mut rx = self.stop.clone();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Resolves when sinks should give up.
    pub async fn aborted(&self) {
        let mut rx = self.abort.clone();
        let _ = rx.wait_for(|v| *v).await;
    }
}
