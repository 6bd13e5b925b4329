//! Test support for the otlp sink: real OTLP receivers on loopback that deliver what they take
//! in and keep the bodies, and a one-shot sink run.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::component::{SinkContext, SourceContext};
use crate::flow::ack::{Ack, AckStatus, Acks};
use crate::flow::batch::Batch;
use crate::flow::event::{Events, LogEvent};
use crate::flow::fanout::Fanout;
use crate::flow::queue::{ByteQueue, WhenFull};
use crate::shutdown::ShutdownTrigger;
use crate::telemetry::{ComponentMetrics, QueueMetrics};

/// An `otlp` receiver (configured by `yaml`) whose batches are delivered at once.
pub struct Receiver {
    pub bodies: Arc<Mutex<Vec<String>>>,
    trigger: ShutdownTrigger,
    queue: Arc<ByteQueue<Batch>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    _data: tempfile::TempDir,
}

impl Receiver {
    pub async fn start(name: &str, yaml: &str) -> Self {
        let config: crate::sources::otlp::config::OtlpSourceConfig =
            serde_yaml_ng::from_str(yaml).unwrap();
        let queue = Arc::new(ByteQueue::new(
            1 << 22,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let (trigger, shutdown) = ShutdownTrigger::new();
        let metrics = ComponentMetrics::new("test", name, "otlp");
        let data = tempfile::tempdir().unwrap();
        let receiver = tokio::spawn(
            crate::sources::otlp::build(
                &config,
                SourceContext {
                    name: name.into(),
                    data_dir: data.path().to_owned(),
                    out: Fanout::new(vec![queue.clone()]),
                    taps: None,
                    shutdown,
                    metrics,
                    pods: None,
                },
            )
            .unwrap(),
        );
        let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
        let consumer = {
            let (queue, bodies) = (queue.clone(), bodies.clone());
            tokio::spawn(async move {
                while let Some(b) = queue.pop().await {
                    if let Events::Logs(l) = &b.events {
                        bodies
                            .lock()
                            .unwrap()
                            .extend(l.iter().map(|e| e.body.to_text().into_owned()));
                    }
                    b.acks.deliver();
                }
            })
        };
        tokio::time::sleep(Duration::from_millis(100)).await;
        Self {
            bodies,
            trigger,
            queue,
            tasks: vec![receiver, consumer],
            _data: data,
        }
    }

    pub fn received(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }

    /// Stops listening (new connections are refused) and waits for it.
    pub async fn stop(self) {
        self.trigger.stop();
        self.queue.close();
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Events with bodies `<label> <i>`, as one batch, and the receiver of its final status.
pub fn batch(label: &str, n: usize) -> (Batch, tokio::sync::oneshot::Receiver<AckStatus>) {
    let (share, rx) = Ack::channel();
    let events = (0..n)
        .map(|i| LogEvent {
            body: format!("{label} {i}").into(),
            ..Default::default()
        })
        .collect();
    (Batch::new(Events::Logs(events), Acks::one(share)), rx)
}

/// An `otlp` sink (configured by `yaml`) running on a queue the test feeds.
pub struct Sink {
    pub input: Arc<ByteQueue<Batch>>,
    pub metrics: ComponentMetrics,
    trigger: ShutdownTrigger,
    task: tokio::task::JoinHandle<()>,
    _data: tempfile::TempDir,
}

impl Sink {
    pub fn start(yaml: &str, name: &str) -> Self {
        let config: super::OtlpSinkConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let input = Arc::new(ByteQueue::new(
            1 << 22,
            WhenFull::Block,
            QueueMetrics::detached(),
        ));
        let (trigger, shutdown) = ShutdownTrigger::new();
        let data = tempfile::tempdir().unwrap();
        let metrics = ComponentMetrics::new("test", name, "otlp");
        let task = tokio::spawn(
            super::build(
                &config.prepare(name).unwrap(),
                SinkContext {
                    name: name.into(),
                    data_dir: data.path().to_owned(),
                    input: input.clone(),
                    shutdown,
                    metrics: metrics.clone(),
                },
            )
            .unwrap(),
        );
        Self {
            input,
            metrics,
            trigger,
            task,
            _data: data,
        }
    }

    /// Sends `batches` batches of `per_batch` events labelled `label-<b>`; their statuses.
    pub async fn send(&self, label: &str, batches: usize, per_batch: usize) -> Vec<AckStatus> {
        let mut pending = Vec::new();
        for b in 0..batches {
            let (batch, rx) = batch(&format!("{label}-{b}"), per_batch);
            self.input.push(batch).await;
            pending.push(rx);
        }
        let mut statuses = Vec::new();
        for rx in pending {
            let status = tokio::time::timeout(Duration::from_secs(20), rx)
                .await
                .expect("the sink settles every batch")
                .unwrap();
            statuses.push(status);
        }
        statuses
    }

    pub async fn stop(self) {
        self.input.close();
        self.trigger.stop();
        let _ = self.task.await;
    }
}

/// Sends one batch of three events (`secret line <i>`) through a new sink; its status.
pub async fn send(sink_yaml: &str, name: &str) -> AckStatus {
    let sink = Sink::start(sink_yaml, name);
    let status = sink.send("secret line", 1, 3).await;
    sink.stop().await;
    status[0]
}
