//! SNS topics read back through SQS, as TESTING.md says: a queue subscribed to the topic on
//! moto, and every message SNS delivered to it, with its envelope (subject, message
//! attributes) and its body parsed.

use serde_json::Value as J;

/// One message SNS delivered: its subject, message attributes (name → String value) and body.
#[derive(Clone, Debug)]
pub struct Delivered {
    pub subject: String,
    pub attributes: std::collections::BTreeMap<String, String>,
    pub body: String,
    /// When SNS took it (RFC 3339).
    pub timestamp: String,
}

impl Delivered {
    pub fn json(&self) -> J {
        serde_json::from_str(&self.body).unwrap_or(J::Null)
    }
}

/// A topic with a queue subscribed to it.
pub struct Topic {
    pub arn: String,
    pub queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

impl Topic {
    /// Creates topic `name` and a queue subscribed to it on moto at `port`.
    pub async fn create(port: u16, name: &str) -> Topic {
        let config = super::moto_sdk_config(port).await;
        let sns = aws_sdk_sns::Client::new(&config);
        let sqs = aws_sdk_sqs::Client::new(&config);
        let arn = sns
            .create_topic()
            .name(name)
            .send()
            .await
            .unwrap()
            .topic_arn()
            .unwrap()
            .to_string();
        let queue_url = sqs
            .create_queue()
            .queue_name(format!("{name}-queue"))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}-queue");
        sns.subscribe()
            .topic_arn(&arn)
            .protocol("sqs")
            .endpoint(queue_arn)
            .send()
            .await
            .unwrap();
        Topic {
            arn,
            queue_url,
            sqs,
        }
    }

    /// What the queue receives until `until` holds of all received so far, or `seconds` pass.
    pub async fn collect(
        &self,
        seconds: u64,
        until: impl Fn(&[Delivered]) -> bool,
    ) -> Vec<Delivered> {
        let mut got = Vec::new();
        for _ in 0..seconds * 4 {
            got.extend(self.drain().await);
            if until(&got) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        got
    }

    /// What the queue receives until a first message comes, or `seconds` pass.
    pub async fn first(&self, seconds: u64) -> Vec<Delivered> {
        self.collect(seconds, |got| !got.is_empty()).await
    }

    /// Every message waiting in the queue now (each received once, then deleted).
    pub async fn drain(&self) -> Vec<Delivered> {
        let mut out = Vec::new();
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = received.messages();
            if messages.is_empty() {
                return out;
            }
            for m in messages {
                let envelope: J = serde_json::from_str(m.body().unwrap()).unwrap();
                let attributes = envelope["MessageAttributes"]
                    .as_object()
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| {
                                (k.clone(), v["Value"].as_str().unwrap_or("").to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(Delivered {
                    subject: envelope["Subject"].as_str().unwrap_or("").to_string(),
                    attributes,
                    body: envelope["Message"].as_str().unwrap().to_string(),
                    timestamp: envelope["Timestamp"].as_str().unwrap_or("").to_string(),
                });
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
}
