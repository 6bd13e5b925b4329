//! Ordered parallel sending: a sink's records in `lanes` lanes of one request at a time, every
//! record in the lane of its resource (a file, a container, a service).
//!
//! With several requests in flight, a failed request retried after a later one succeeded would
//! deliver a file's lines out of order (after an outage, all in-flight requests retry and race).
//! In lanes, a resource's records always travel in the same lane, one request after the other,
//! and a retry holds its lane: each resource's records arrive in order, while different
//! resources use all lanes. The cost: one resource alone gets one request in flight.
//!
//! A batch whose records belong to several lanes is split; the parts share its
//! acknowledgement, which completes when every part has. Each lane's queue holds up to two
//! batches' worth of bytes, so lanes add a bounded amount to the sink's memory.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::component::SinkContext;
use crate::flow::ack::AckStatus;
use crate::flow::batch::Batch;
use crate::flow::batcher::BatchSettings;
use crate::flow::event::{Events, Origin, Value};
use crate::flow::queue::{ByteQueue, WhenFull};
use crate::telemetry::QueueMetrics;

/// Runs [`crate::sink::driver::drive`] in `lanes` lanes of one request each; see the module doc.
pub async fn drive_in_lanes<F, Fut>(cx: SinkContext, batch: BatchSettings, lanes: usize, process: F)
where
    F: Fn(Events) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = AckStatus> + Send + 'static,
{
    if lanes <= 1 {
        return crate::sink::driver::drive(cx, batch, 1, process).await;
    }
    let lane_bytes = batch.max_bytes.as_usize().saturating_mul(2).max(1 << 20);
    let queues: Vec<Arc<ByteQueue<Batch>>> = (0..lanes)
        .map(|_| {
            Arc::new(ByteQueue::new(
                lane_bytes,
                WhenFull::Block,
                QueueMetrics::detached(),
            ))
        })
        .collect();
    let process = Arc::new(process);
    let mut drivers = JoinSet::new();
    for queue in &queues {
        let lane = SinkContext {
            name: cx.name.clone(),
            data_dir: cx.data_dir.clone(),
            input: queue.clone(),
            shutdown: cx.shutdown.clone(),
            metrics: cx.metrics.clone(),
        };
        let process = process.clone();
        drivers.spawn(crate::sink::driver::drive(
            lane,
            batch.clone(),
            1,
            move |events| process(events),
        ));
    }
    while let Some(b) = cx.input.pop().await {
        for (lane, part) in split_by_lane(b, lanes) {
            queues[lane].push(part).await;
        }
    }
    for queue in &queues {
        queue.close();
    }
    while drivers.join_next().await.is_some() {}
}

/// The lane of a resource: a hash of its attributes (not of the `Arc`, which a disk buffer or
/// a hop re-creates).
fn lane_of(origin: &Origin, lanes: usize) -> usize {
    let mut h = foldhash::fast::FixedState::with_seed(0x1a4e).build_hasher();
    for kv in &origin.resource.attributes {
        h.write(kv.key.as_bytes());
        h.write_u8(0xff);
        match &kv.value {
            Value::Str(s) => h.write(s.as_bytes()),
            other => h.write(other.to_text().as_bytes()),
        }
        h.write_u8(0xfe);
    }
    (h.finish() % lanes as u64) as usize
}

/// Splits `items` by lane, remembering each distinct origin's lane (records of one origin
/// share its `Arc`, so this hashes each resource once per batch).
fn partition<T>(
    items: Vec<T>,
    lanes: usize,
    origin: impl Fn(&T) -> &Arc<Origin>,
) -> Vec<(usize, Vec<T>)> {
    let mut known: std::collections::HashMap<*const Origin, usize> =
        std::collections::HashMap::new();
    let mut by_lane: Vec<Vec<T>> = (0..lanes).map(|_| Vec::new()).collect();
    for item in items {
        let o = origin(&item);
        let lane = *known
            .entry(Arc::as_ptr(o))
            .or_insert_with(|| lane_of(o, lanes));
        by_lane[lane].push(item);
    }
    by_lane
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

fn split_by_lane(b: Batch, lanes: usize) -> Vec<(usize, Batch)> {
    let Batch {
        events,
        acks,
        awaited,
        ..
    } = b;
    let parts: Vec<(usize, Events)> = match events {
        Events::Logs(v) => partition(v, lanes, |e| &e.origin)
            .into_iter()
            .map(|(l, v)| (l, Events::Logs(v)))
            .collect(),
        Events::Metrics(v) => partition(v, lanes, |m| &m.origin)
            .into_iter()
            .map(|(l, v)| (l, Events::Metrics(v)))
            .collect(),
        Events::Spans(v) => partition(v, lanes, |s| &s.origin)
            .into_iter()
            .map(|(l, v)| (l, Events::Spans(v)))
            .collect(),
    };
    let mut out = Vec::with_capacity(parts.len());
    let mut acks = Some(acks);
    let count = parts.len();
    for (i, (lane, events)) in parts.into_iter().enumerate() {
        // The last part takes the batch's own shares; the others get shares of the same.
        let part_acks = if i + 1 == count {
            acks.take().unwrap_or_default()
        } else {
            acks.as_ref()
                .map(crate::flow::ack::Acks::split)
                .unwrap_or_default()
        };
        let mut part = Batch::new(events, part_acks);
        part.awaited = awaited;
        out.push((lane, part));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::ack::{Ack, Acks};
    use crate::flow::event::{KeyValue, LogEvent, Resource};

    fn origin(file: &str) -> Arc<Origin> {
        Arc::new(Origin {
            resource: Resource {
                attributes: vec![KeyValue::new("log.file.path", file)],
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[tokio::test]
    async fn a_resource_always_takes_the_same_lane_and_the_parts_share_one_acknowledgement() {
        let origins: Vec<Arc<Origin>> = (0..8)
            .map(|i| origin(&format!("/var/log/{i}.log")))
            .collect();
        let events: Vec<LogEvent> = (0..80)
            .map(|i| LogEvent {
                origin: origins[i % 8].clone(),
                body: format!("{i}").into(),
                ..Default::default()
            })
            .collect();
        let (share, rx) = Ack::channel();
        let parts = split_by_lane(Batch::new(Events::Logs(events), Acks::one(share)), 4);
        assert!(parts.len() > 1, "eight files over four lanes");
        // The same file in a re-created Arc (after a hop) goes to the same lane.
        for (lane, part) in &parts {
            let Events::Logs(l) = &part.events else {
                continue;
            };
            for e in l {
                assert_eq!(lane_of(&origin(&e.attributes_path()), 4), *lane);
            }
        }
        // Order within each file is kept.
        let mut per_file: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (_, part) in &parts {
            if let Events::Logs(l) = &part.events {
                for e in l {
                    per_file
                        .entry(e.attributes_path())
                        .or_default()
                        .push(e.body.to_text().parse().unwrap_or(0));
                }
            }
        }
        assert!(per_file.values().all(|v| v.windows(2).all(|w| w[0] < w[1])));
        assert_eq!(per_file.values().map(Vec::len).sum::<usize>(), 80);
        // The acknowledgement completes when every part delivered, not before.
        let mut parts = parts.into_iter();
        let first = parts.next().map(|(_, b)| b);
        for (_, b) in parts {
            b.acks.deliver();
        }
        let mut rx = rx;
        assert!(rx.try_recv().is_err(), "one part still open");
        if let Some(b) = first {
            b.acks.deliver();
        }
        assert_eq!(rx.await.ok(), Some(AckStatus::Delivered));
    }

    trait Path {
        fn attributes_path(&self) -> String;
    }

    impl Path for LogEvent {
        fn attributes_path(&self) -> String {
            self.origin
                .resource_attribute("log.file.path")
                .map(|v| v.to_text().into_owned())
                .unwrap_or_default()
        }
    }
}
