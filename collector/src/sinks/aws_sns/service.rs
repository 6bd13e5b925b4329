//! The only place that calls SNS: Publish of one message.

use aws_sdk_sns::types::MessageAttributeValue;
use aws_sdk_sns::Client;

use super::request_builder::Message;
use crate::sinks::aws::{sdk_config, AwsError, AwsErrorKind, AwsSettings};

pub struct SnsService {
    client: Client,
    /// A topic to check at start, when the sink has one.
    healthcheck_topic: Option<String>,
}

impl SnsService {
    pub async fn new(aws: &AwsSettings, healthcheck_topic: Option<String>) -> Self {
        Self {
            client: Client::new(&sdk_config(aws).await),
            healthcheck_topic,
        }
    }

    /// The default topic's attributes (credentials, endpoint, the topic and permission), or
    /// the topic list where there is no default topic.
    pub async fn healthcheck(&self) -> Result<(), AwsError> {
        match &self.healthcheck_topic {
            Some(topic) => self
                .client
                .get_topic_attributes()
                .topic_arn(topic)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk(&e)),
            None => self
                .client
                .list_topics()
                .send()
                .await
                .map(|_| ())
                .map_err(|e| AwsError::from_sdk(&e)),
        }
    }

    /// Publishes; answers SNS's message id.
    pub async fn publish(&self, message: &Message) -> Result<String, AwsError> {
        let mut request = self
            .client
            .publish()
            .topic_arn(&message.topic_arn)
            .message(&message.body)
            .set_subject(message.subject.clone())
            .set_message_group_id(message.message_group_id.clone())
            .set_message_deduplication_id(message.deduplication_id.clone());
        for (name, value) in &message.attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| AwsError {
                    kind: AwsErrorKind::Construction,
                    code: None,
                    status: None,
                    message: e.to_string(),
                })?;
            request = request.message_attributes(name, value);
        }
        let output = request.send().await.map_err(|e| AwsError::from_sdk(&e))?;
        Ok(output.message_id().unwrap_or_default().to_string())
    }
}
