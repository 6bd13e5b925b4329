//! Supervision: every component task runs under a supervisor, so a panic is seen and mended
//! instead of silently leaving a queue that fills and sources that block.
//!
//! Contract: when a component's task panics, the supervisor logs it at `error` with the
//! component's name and the panic message, counts it (`sextant_component_errors_total
//! {error_type="panic"}`), sets `sextant_component_up` to 0 (so `/readyz` fails and names the
//! component) and, after a backoff (1 s, doubling to 60 s while it keeps failing within a minute
//! of starting), builds the component again from its config and runs it
//! (`sextant_component_restarts_total`). What the component held is not lost: its queue and disk
//! buffer are outside the task and survive; the batches it had taken are dropped with it, which
//! fails their acknowledgements, so their sources send them again (files re-read, receivers
//! answer retry-later, a disk buffer reads the records again). A task that ends without a panic
//! has finished (its input closed, or shutdown); one aborted by shutdown is not restarted.

use std::any::Any;
use std::time::Duration;

use tokio::time::Instant;

use crate::component::{BuildError, Task};
use crate::shutdown::Shutdown;
use crate::telemetry::ComponentMetrics;

const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A component that ran this long before failing starts its backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// Runs `first`, and after each panic a task made by `rebuild`, until one ends or `shutdown`
/// aborts; see the module doc.
pub async fn supervise(
    first: Task,
    mut rebuild: impl FnMut() -> Result<Task, BuildError> + Send,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
    delay: Option<Duration>,
) {
    let mut task = first;
    let mut next_delay = delay.unwrap_or(FIRST_DELAY);
    loop {
        let started = Instant::now();
        let failure = match tokio::spawn(task).await {
            Ok(()) => return,
            Err(e) if e.is_cancelled() => return,
            Err(e) => panic_message(e.into_panic()),
        };
        metrics.set_up(false);
        metrics.error("panic");
        if started.elapsed() >= STABLE_AFTER {
            next_delay = delay.unwrap_or(FIRST_DELAY);
        }
        tracing::error!(component = %metrics.name, kind = metrics.kind, panic = %failure, restart_in = ?next_delay, "component panicked; restarting it (what it held goes back to its sources)");
        loop {
            tokio::select! {
                () = tokio::time::sleep(next_delay) => {}
                () = shutdown.aborted() => return,
            }
            next_delay = (next_delay * 2).min(MAX_DELAY);
            match rebuild() {
                Ok(t) => {
                    task = t;
                    break;
                }
                Err(e) => {
                    tracing::error!(component = %metrics.name, error = %e, restart_in = ?next_delay, "cannot restart the component; trying again");
                }
            }
        }
        metrics.restarts.inc();
    }
}

/// The message a panic carried, as text.
fn panic_message(payload: Box<dyn Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}
