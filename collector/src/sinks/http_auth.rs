//! What the collector's HTTP sinks (remote write, OpenSearch) check at start-up the same way
//! ([`prepare_target`]): the endpoint (`http://`, or `https://` with `tls:`), extra `headers:`,
//! and `auth:` — basic, bearer, or AWS SigV4 with the default credential chain, whose
//! credentials are looked up on first use, so building a sink never waits for the network.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use tokio::sync::OnceCell;

use sextant_pipeline::component::BuildError;
use sextant_pipeline::net::tls::ClientTls;

use crate::sinks::aws::sigv4::SigV4;
use crate::sinks::aws::AwsSettings;

#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpAuthConfig {
    Basic {
        user: String,
        password: String,
    },
    Bearer {
        token: String,
    },
    /// AWS Signature Version 4 (Amazon Managed Prometheus, Amazon OpenSearch Service).
    Sigv4 {
        /// Region; unset: the environment's (`AWS_REGION`) or the instance's.
        #[serde(default)]
        region: Option<String>,
        /// The signing name; unset: the sink's (`aps`, `es`).
        #[serde(default)]
        service: Option<String>,
    },
}

/// An HTTP sink's checked endpoint, TLS, headers and auth.
pub struct HttpTarget {
    pub uri: http::Uri,
    pub tls: Option<rustls::ClientConfig>,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub auth: Authorizer,
}

/// Checks `endpoint`, `tls`, `headers` and `auth` of the sink at `key` (errors name the
/// setting); `signing_name` is its SigV4 service unless `auth.service` says otherwise.
pub fn prepare_target(
    key: &str,
    endpoint: &str,
    tls: &ClientTls,
    headers: &BTreeMap<String, String>,
    auth: Option<&HttpAuthConfig>,
    signing_name: &str,
) -> Result<HttpTarget, BuildError> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| BuildError::at(key, "endpoint", format!("not a URL: {e}")))?;
    let tls = match uri.scheme_str() {
        Some("https") => Some(
            tls.client_config()
                .map_err(|e| BuildError::at(key, "tls", e))?,
        ),
        Some("http") => None,
        _ => {
            return Err(BuildError::at(
                key,
                "endpoint",
                "give an http:// or https:// URL",
            ))
        }
    };
    let headers = headers
        .iter()
        .map(|(k, v)| {
            let name = http::HeaderName::from_bytes(k.as_bytes()).map_err(|_| {
                BuildError::at(key, "headers", format!("{k:?} is not a header name"))
            })?;
            let value = http::HeaderValue::from_str(v).map_err(|_| {
                BuildError::at(
                    key,
                    "headers",
                    format!("the value of {k} is not a header value"),
                )
            })?;
            Ok((name, value))
        })
        .collect::<Result<_, BuildError>>()?;
    let auth = Authorizer::new(auth, signing_name).map_err(|e| BuildError::at(key, "auth", e))?;
    Ok(HttpTarget {
        uri,
        tls,
        headers,
        auth,
    })
}

/// What a sink does to each request before sending it.
#[derive(Clone)]
pub enum Authorizer {
    None,
    Header(http::HeaderValue),
    SigV4(Arc<LazySigV4>),
}

/// A signer made on first use (loading credentials may ask the network).
pub struct LazySigV4 {
    aws: AwsSettings,
    service: String,
    signer: OnceCell<SigV4>,
}

impl Authorizer {
    /// The authorizer for `config`; `default_service` is the sink's SigV4 signing name.
    pub fn new(config: Option<&HttpAuthConfig>, default_service: &str) -> Result<Self, String> {
        let header = |text: String| {
            http::HeaderValue::from_str(&text)
                .map(|mut v| {
                    v.set_sensitive(true);
                    Authorizer::Header(v)
                })
                .map_err(|_| "the credentials hold characters a header cannot".to_owned())
        };
        match config {
            None => Ok(Authorizer::None),
            Some(HttpAuthConfig::Basic { user, password }) => {
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                header(format!("Basic {token}"))
            }
            Some(HttpAuthConfig::Bearer { token }) => header(format!("Bearer {token}")),
            Some(HttpAuthConfig::Sigv4 { region, service }) => {
                Ok(Authorizer::SigV4(Arc::new(LazySigV4 {
                    aws: AwsSettings {
                        region: region.clone(),
                        endpoint: None,
                    },
                    service: service.clone().unwrap_or_else(|| default_service.into()),
                    signer: OnceCell::new(),
                })))
            }
        }
    }

    /// Authorizes `request` (whose body is `body`): the header, or the signature of this
    /// attempt.
    pub async fn apply(
        &self,
        request: &mut http::Request<Full<Bytes>>,
        body: &[u8],
    ) -> Result<(), String> {
        match self {
            Authorizer::None => Ok(()),
            Authorizer::Header(v) => {
                request
                    .headers_mut()
                    .insert(http::header::AUTHORIZATION, v.clone());
                Ok(())
            }
            Authorizer::SigV4(lazy) => {
                let signer = lazy
                    .signer
                    .get_or_try_init(|| SigV4::new(&lazy.aws, &lazy.service))
                    .await?;
                signer.sign(request, body).await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn header_of(config: HttpAuthConfig) -> String {
        let auth = Authorizer::new(Some(&config), "aps").unwrap();
        let mut request = http::Request::post("http://x/")
            .body(Full::new(Bytes::new()))
            .unwrap();
        auth.apply(&mut request, b"").await.unwrap();
        request.headers()[http::header::AUTHORIZATION]
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[tokio::test]
    async fn basic_and_bearer_set_the_authorization_header_and_mark_it_sensitive() {
        let basic = header_of(HttpAuthConfig::Basic {
            user: "grafana".into(),
            password: "s3cr:et".into(),
        })
        .await;
        // base64("grafana:s3cr:et")
        assert_eq!(basic, "Basic Z3JhZmFuYTpzM2NyOmV0");
        let bearer = header_of(HttpAuthConfig::Bearer {
            token: "abc.def".into(),
        })
        .await;
        assert_eq!(bearer, "Bearer abc.def");
        assert!(Authorizer::new(
            Some(&HttpAuthConfig::Bearer {
                token: "line\nbreak".into()
            }),
            "aps"
        )
        .is_err());
    }
}
