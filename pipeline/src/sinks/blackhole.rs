//! Sink `blackhole`: acknowledges and counts everything, sends nothing. For benchmarks and for
//! measuring a pipeline without a backend.

use serde::Deserialize;

use crate::component::{BuildError, QueueSettings, SinkContext, Task};
use crate::flow::ack::AckStatus;
use crate::flow::batcher::BatchSettings;
use crate::sink::driver;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BlackholeSinkConfig {
    pub inputs: Vec<String>,
    #[serde(default)]
    pub batch: BatchSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

pub fn build(config: &BlackholeSinkConfig, cx: SinkContext) -> Result<Task, BuildError> {
    let metrics = cx.metrics.clone();
    Ok(Box::pin(driver::drive(
        cx,
        config.batch.clone(),
        1,
        move |events| {
            metrics.sent_events.inc_by(events.len() as u64);
            async { AckStatus::Delivered }
        },
    )))
}

crate::sink_config!(
    BlackholeSinkConfig,
    "blackhole",
    crate::flow::event::Signals::ALL,
    build = build
);
