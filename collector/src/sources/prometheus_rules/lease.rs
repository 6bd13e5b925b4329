//! The ruler pair's leadership: a Kubernetes Lease (`coordination.k8s.io/v1`), taken and
//! renewed as client-go's leader election does. Both rulers evaluate; only the holder sends
//! notifications and writes rule results to the sinks (see the module doc of the source).
//!
//! - Every `retry_period` the Lease is read: free (no holder), held by this ruler, or not
//!   renewed for `duration` as this ruler observed it (its own clock, never the other's
//!   timestamps) is taken or renewed with an update that carries the read's resourceVersion —
//!   of two rulers racing, the API server lets one through and answers the other 409.
//! - The holder that cannot renew for `renew_deadline` (the API is unreachable, say) stops
//!   leading before its Lease can expire, so the two never notify at once; without the Lease a
//!   ruler does not notify, and says so.
//! - At a clean stop the holder gives the Lease up (holder cleared), so the other takes over
//!   at its next try rather than after `duration`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use serde::Deserialize;

use sextant_pipeline::component::BuildError;
use sextant_pipeline::config::units::DurationValue;
use sextant_pipeline::net::kube_api::{self, ApiSource};
use sextant_pipeline::shutdown::Shutdown;
use sextant_pipeline::telemetry::{ComponentMetrics, LogLimiter};

/// `lease:` of a `prometheus_rules` source.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LeaseConfig {
    /// The Lease's name, the same for both rulers.
    pub name: String,
    /// Its namespace; unset: `$POD_NAMESPACE`, else `default`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// This ruler's name in the Lease; unset: `$POD_NAME`, else the host name.
    #[serde(default)]
    pub identity: Option<String>,
    /// How long a Lease not renewed stays the holder's.
    #[serde(default = "default_duration")]
    pub duration: DurationValue,
    /// How long the holder keeps leading without a successful renewal.
    #[serde(default = "default_renew_deadline")]
    pub renew_deadline: DurationValue,
    /// How often the Lease is tried.
    #[serde(default = "default_retry_period")]
    pub retry_period: DurationValue,
    /// A kubeconfig; unset: the pod's service account.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
}

fn default_duration() -> DurationValue {
    DurationValue(Duration::from_secs(15))
}

fn default_renew_deadline() -> DurationValue {
    DurationValue(Duration::from_secs(10))
}

fn default_retry_period() -> DurationValue {
    DurationValue(Duration::from_secs(2))
}

/// The checked settings.
#[derive(Clone, Debug)]
pub(super) struct Election {
    source: ApiSource,
    name: String,
    namespace: String,
    identity: String,
    duration: Duration,
    renew_deadline: Duration,
    retry_period: Duration,
}

impl LeaseConfig {
    pub(super) fn prepare(&self, component: &str) -> Result<Election, BuildError> {
        let at = |field: &str, message: &str| {
            BuildError::at(component, &format!("lease.{field}"), message)
        };
        if self.name.is_empty() {
            return Err(at("name", "name the Lease both rulers share"));
        }
        if self.renew_deadline.0 >= self.duration.0 {
            return Err(at(
                "renew_deadline",
                "must be shorter than duration, or the two rulers could both lead",
            ));
        }
        if self.retry_period.0 >= self.renew_deadline.0 || self.retry_period.0.is_zero() {
            return Err(at(
                "retry_period",
                "must be above zero and shorter than renew_deadline",
            ));
        }
        let source = kube_api::api_source(Some(true), self.kubeconfig.as_ref(), component)?
            .ok_or_else(|| at("kubeconfig", "the Lease needs the Kubernetes API"))?;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let identity = self
            .identity
            .clone()
            .or_else(|| env("POD_NAME"))
            .or_else(|| env("HOSTNAME"))
            .ok_or_else(|| {
                at(
                    "identity",
                    "set identity, or $POD_NAME from the downward API",
                )
            })?;
        Ok(Election {
            source,
            name: self.name.clone(),
            namespace: self
                .namespace
                .clone()
                .or_else(|| env("POD_NAMESPACE"))
                .unwrap_or_else(|| "default".to_string()),
            identity,
            duration: self.duration.0,
            renew_deadline: self.renew_deadline.0,
            retry_period: self.retry_period.0,
        })
    }
}

/// Whether this ruler leads now.
#[derive(Clone, Debug, Default)]
pub(super) struct Leading(Arc<AtomicBool>);

impl Leading {
    pub fn now(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn set(&self, leading: bool) -> bool {
        self.0.swap(leading, Ordering::AcqRel) != leading
    }

    /// A process without a Lease leads on its own.
    pub fn set_alone(&self) {
        self.set(true);
    }
}

/// What this ruler saw of the Lease last, and when (its own clock).
struct Observed {
    record: Option<(String, Option<MicroTime>)>,
    at: Instant,
}

/// Runs the election until shutdown; `leading` follows it.
pub(super) async fn run(
    election: Election,
    leading: Leading,
    metrics: ComponentMetrics,
    shutdown: Shutdown,
) {
    let limiter = LogLimiter::default();
    let mut api: Option<Api<Lease>> = None;
    let mut observed = Observed {
        record: None,
        at: Instant::now(),
    };
    let mut renewed_at: Option<Instant> = None;
    loop {
        if api.is_none() {
            match kube_api::client(&election.source).await {
                Ok(client) => api = Some(Api::namespaced(client, &election.namespace)),
                Err(error) => {
                    metrics.error("lease_unavailable");
                    if let Some(suppressed) = limiter.allow() {
                        tracing::error!(component = %metrics.name, %error, suppressed, "no Kubernetes API client for the Lease; not notifying");
                    }
                }
            }
        }
        let outcome = match &api {
            Some(api) => try_acquire_or_renew(api, &election, &mut observed).await,
            None => Err("no client".to_string()),
        };
        match outcome {
            Ok(true) => {
                renewed_at = Some(Instant::now());
                if leading.set(true) {
                    tracing::info!(component = %metrics.name, lease = %election.name, identity = %election.identity, "holding the Lease: this ruler notifies");
                }
            }
            Ok(false) => {
                renewed_at = None;
                if leading.set(false) {
                    metrics.error("lease_lost");
                    tracing::warn!(component = %metrics.name, lease = %election.name, "the Lease is another ruler's: this ruler evaluates without notifying");
                }
            }
            Err(error) => {
                metrics.error("lease_unavailable");
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(component = %metrics.name, %error, suppressed, "the Lease could not be read or renewed");
                }
                let overdue = renewed_at.is_none_or(|at| at.elapsed() >= election.renew_deadline);
                if overdue && leading.set(false) {
                    metrics.error("lease_lost");
                    tracing::error!(component = %metrics.name, lease = %election.name, "the Lease was not renewed within renew_deadline: not notifying rather than risk doubles");
                }
            }
        }
        tokio::select! {
            () = shutdown.stopped() => break,
            () = tokio::time::sleep(election.retry_period) => {}
        }
    }
    if leading.set(false) {
        if let Some(api) = &api {
            if let Err(error) = release(api, &election).await {
                tracing::warn!(component = %metrics.name, %error, "the Lease was not given up; the other ruler takes it when it expires");
            }
        }
    }
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::chrono::DateTime::from(
        std::time::SystemTime::now(),
    ))
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// One round: `Ok(true)` when this ruler holds the Lease after it.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    election: &Election,
    observed: &mut Observed,
) -> Result<bool, String> {
    let current = api
        .get_opt(&election.name)
        .await
        .map_err(|e| e.to_string())?;
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(election.name.clone()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(election.identity.clone()),
                lease_duration_seconds: Some(seconds(election.duration)),
                acquire_time: Some(now()),
                renew_time: Some(now()),
                lease_transitions: Some(0),
                ..Default::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e.to_string()),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().unwrap_or_default();
    let record = Some((holder.clone(), spec.renew_time.clone()));
    if record != observed.record {
        observed.record = record;
        observed.at = Instant::now();
    }
    let duration = spec
        .lease_duration_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(election.duration, Duration::from_secs);
    let mine = holder == election.identity;
    let free = holder.is_empty() || observed.at.elapsed() >= duration;
    if !mine && !free {
        return Ok(false);
    }
    let mut spec = spec;
    if !mine {
        spec.holder_identity = Some(election.identity.clone());
        spec.acquire_time = Some(now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    spec.lease_duration_seconds = Some(seconds(election.duration));
    spec.renew_time = Some(now());
    lease.spec = Some(spec);
    match api
        .replace(&election.name, &PostParams::default(), &lease)
        .await
    {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e.to_string()),
    }
}

/// Gives the Lease up: holder cleared, so the other ruler takes it at its next try.
async fn release(api: &Api<Lease>, election: &Election) -> Result<(), String> {
    let Some(mut lease) = api
        .get_opt(&election.name)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(());
    };
    let mut spec = lease.spec.clone().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(election.identity.as_str()) {
        return Ok(());
    }
    spec.holder_identity = None;
    spec.lease_duration_seconds = Some(1);
    spec.renew_time = Some(now());
    lease.spec = Some(spec);
    api.replace(&election.name, &PostParams::default(), &lease)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}
