//! The batcher: merging small source batches (100 events) into sink batches (10,000 events).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sextant_pipeline::config::units::{ByteSizeValue, DurationValue};
use sextant_pipeline::flow::ack::{Ack, Acks};
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::batcher::{BatchSettings, Batcher};
use sextant_pipeline::flow::event::{Events, LogEvent};
use sextant_pipeline::flow::queue::{ByteQueue, WhenFull};
use sextant_pipeline::telemetry::QueueMetrics;

const SOURCE_BATCH: usize = 100;
const SOURCE_BATCHES: usize = 1000;

fn merge(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("batcher");
    group.throughput(Throughput::Elements((SOURCE_BATCH * SOURCE_BATCHES) as u64));
    group.sample_size(20);
    group.bench_function("merge_100_into_10000_with_acks", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let q = Arc::new(ByteQueue::new(
                    usize::MAX / 2,
                    WhenFull::Block,
                    QueueMetrics::detached(),
                ));
                rt.block_on(async {
                    for _ in 0..SOURCE_BATCHES {
                        let events = vec![LogEvent::default(); SOURCE_BATCH];
                        let acks = Acks::one(Ack::new(|_| {}));
                        q.push(Batch::with_size(
                            Events::Logs(events),
                            acks,
                            SOURCE_BATCH * 100,
                        ))
                        .await;
                    }
                });
                q.close();
                let mut batcher = Batcher::new(
                    q,
                    BatchSettings {
                        max_events: 10_000,
                        max_bytes: ByteSizeValue(64 << 20),
                        timeout: DurationValue(Duration::from_secs(1)),
                    },
                );
                let start = Instant::now();
                let out = rt.block_on(async {
                    let mut out = Vec::new();
                    while let Some(b) = batcher.next().await {
                        out.push(b);
                    }
                    out
                });
                total += start.elapsed();
                assert_eq!(
                    out.iter().map(Batch::len).sum::<usize>(),
                    SOURCE_BATCH * SOURCE_BATCHES
                );
                for b in out {
                    b.acks.deliver();
                }
            }
            total
        })
    });
    group.finish();
}

criterion_group!(benches, merge);
criterion_main!(benches);
