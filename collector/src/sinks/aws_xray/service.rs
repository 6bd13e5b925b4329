//! The only place that calls X-Ray: PutTraceSegments, answering which documents X-Ray did not
//! process (by segment id).

use aws_sdk_xray::Client;

use super::request_builder::Document;
use crate::sinks::aws::{sdk_config, AwsError, AwsSettings};

/// A document X-Ray did not process, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Unprocessed {
    pub id: String,
    pub error_code: String,
    pub message: String,
}

pub struct XRayService {
    client: Client,
}

impl XRayService {
    pub async fn new(aws: &AwsSettings) -> Self {
        Self {
            client: Client::new(&sdk_config(aws).await),
        }
    }

    /// A cheap read (trace summaries of the last minute): credentials, endpoint and permission.
    pub async fn healthcheck(&self) -> Result<(), AwsError> {
        let now = std::time::SystemTime::now();
        let minute_ago = now - std::time::Duration::from_secs(60);
        self.client
            .get_trace_summaries()
            .start_time(aws_smithy_types::DateTime::from(minute_ago))
            .end_time(aws_smithy_types::DateTime::from(now))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| AwsError::from_sdk(&e))
    }

    pub async fn put(&self, documents: &[Document]) -> Result<Vec<Unprocessed>, AwsError> {
        let output = self
            .client
            .put_trace_segments()
            .set_trace_segment_documents(Some(documents.iter().map(|d| d.json.clone()).collect()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        Ok(output
            .unprocessed_trace_segments()
            .iter()
            .map(|u| Unprocessed {
                id: u.id().unwrap_or_default().to_string(),
                error_code: u.error_code().unwrap_or_default().to_string(),
                message: u.message().unwrap_or_default().to_string(),
            })
            .collect())
    }
}
