//! The byte-bounded queue: batches of small log events through it, one producer and several.
//! Figures are events per second (Throughput::Elements); the queue must move at least 20 million
//! small events per second on one core when they travel in batches.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sextant_pipeline::flow::ack::Acks;
use sextant_pipeline::flow::batch::Batch;
use sextant_pipeline::flow::event::{Events, LogEvent};
use sextant_pipeline::flow::queue::{ByteQueue, WhenFull};
use sextant_pipeline::telemetry::QueueMetrics;

const EVENTS_PER_BATCH: usize = 1000;
const EVENT_BYTES: usize = 100;

fn batch() -> Batch {
    let events = vec![
        LogEvent {
            body: "x".repeat(36).into(),
            ..Default::default()
        };
        EVENTS_PER_BATCH
    ];
    Batch::with_size(
        Events::Logs(events),
        Acks::none(),
        EVENTS_PER_BATCH * EVENT_BYTES,
    )
}

fn queue() -> Arc<ByteQueue<Batch>> {
    Arc::new(ByteQueue::new(
        64 << 20,
        WhenFull::Block,
        QueueMetrics::new("bench", "bench_queue"),
    ))
}

fn one_core(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let q = queue();
    let mut group = c.benchmark_group("queue_one_core");
    group.throughput(Throughput::Elements(EVENTS_PER_BATCH as u64));
    // A steady state: the queue holds 16 batches; each iteration moves one batch through it.
    rt.block_on(async {
        for _ in 0..16 {
            q.push(batch()).await;
        }
    });
    group.bench_function("push_pop_batch_of_1000", |b| {
        b.iter(|| {
            rt.block_on(async {
                let x = q.pop().await.unwrap();
                q.push(x).await;
            })
        })
    });
    group.throughput(Throughput::Bytes((EVENTS_PER_BATCH * EVENT_BYTES) as u64));
    group.bench_function("push_pop_batch_bytes", |b| {
        b.iter(|| {
            rt.block_on(async {
                let x = q.pop().await.unwrap();
                q.push(x).await;
            })
        })
    });
    group.finish();
}

fn producers(c: &mut Criterion) {
    let mut group = c.benchmark_group("queue_producers");
    group.sample_size(10);
    for producers in [1usize, 2, 4] {
        let per_producer = 64;
        group.throughput(Throughput::Elements(
            (producers * per_producer * EVENTS_PER_BATCH) as u64,
        ));
        group.bench_with_input(
            BenchmarkId::from_parameter(producers),
            &producers,
            |b, &producers| {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .build()
                    .unwrap();
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        // A small bound so producers really wait on the consumer.
                        let q = Arc::new(ByteQueue::new(
                            4 * EVENTS_PER_BATCH * EVENT_BYTES,
                            WhenFull::Block,
                            QueueMetrics::detached(),
                        ));
                        let pools: Vec<Vec<Batch>> = (0..producers)
                            .map(|_| (0..per_producer).map(|_| batch()).collect())
                            .collect();
                        let start = Instant::now();
                        rt.block_on(async {
                            let tasks: Vec<_> = pools
                                .into_iter()
                                .map(|pool| {
                                    let q = q.clone();
                                    tokio::spawn(async move {
                                        for b in pool {
                                            q.push(b).await;
                                        }
                                    })
                                })
                                .collect();
                            let mut n = 0;
                            let mut held = Vec::with_capacity(producers * per_producer);
                            while n < producers * per_producer {
                                held.push(q.pop().await.unwrap());
                                n += 1;
                            }
                            for t in tasks {
                                t.await.unwrap();
                            }
                            // Dropping the events is not the queue's cost.
                            std::mem::forget(held);
                        });
                        total += start.elapsed();
                    }
                    total
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, one_core, producers);
criterion_main!(benches);
