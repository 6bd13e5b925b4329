//! Sink `console`: JSON lines on standard output, for trying things out.

use std::io::Write;

use serde::Deserialize;

use crate::component::{BuildError, QueueSettings, SinkContext, Task};
use crate::flow::ack::AckStatus;
use crate::flow::batcher::BatchSettings;
use crate::flow::event::json;
use crate::sink::driver;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSinkConfig {
    pub inputs: Vec<String>,
    #[serde(default)]
    pub batch: BatchSettings,
    #[serde(default)]
    pub queue: QueueSettings,
}

pub fn build(config: &ConsoleSinkConfig, cx: SinkContext) -> Result<Task, BuildError> {
    let metrics = cx.metrics.clone();
    Ok(Box::pin(driver::drive(
        cx,
        config.batch.clone(),
        1,
        move |events| {
            let metrics = metrics.clone();
            async move {
                let n = events.len() as u64;
                let result = tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::new();
                    json::write_json_lines(&events, &mut buf);
                    let mut out = std::io::stdout().lock();
                    out.write_all(&buf).and_then(|()| out.flush())
                })
                .await;
                match result {
                    Ok(Ok(())) => {
                        metrics.sent_events.inc_by(n);
                        AckStatus::Delivered
                    }
                    _ => AckStatus::Failed,
                }
            }
        },
    )))
}

crate::sink_config!(
    ConsoleSinkConfig,
    "console",
    crate::flow::event::Signals::ALL,
    build = build
);
