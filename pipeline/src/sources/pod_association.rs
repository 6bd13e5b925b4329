//! Pod association, as the OpenTelemetry Collector's `k8sattributes` does it: the sources that
//! receive from applications (`otlp`, `xray_udp`) match a sender's source IP to the pod on
//! this node with that IP and add the pod's `k8s.*` attributes to the resource of what it sent.
//!
//! Contract:
//! - Only the agent knows its node's pods; it hands the sources a [`PodResolver`] through
//!   [`crate::component::SourceContext::pods`]. The collector has none: there, `enabled: true`
//!   is a start-up error and unset means off.
//! - `enabled` unset (the default) means on where the Kubernetes API is reachable (in a
//!   cluster, or with `kubeconfig`) and this node's name is known (`node_name` or `$NODE_NAME`),
//!   off elsewhere (a laptop running the embedded default).
//! - Attributes the sender set are never overwritten: a key already on the resource stays as
//!   the sender set it; only missing keys are added.
//! - A sender whose IP is no pod's on this node (the node itself, a `hostNetwork` pod, a pod on
//!   another node, or one the watch has not seen yet) is sent on unchanged.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Deserialize;

use crate::component::BuildError;
use crate::flow::event::{find_attribute, Events, KeyValue, Origin};
use crate::telemetry::ComponentMetrics;

/// `pod_association:` of a source that receives from applications.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PodAssociationConfig {
    /// `true`, `false`, or unset: on where the agent can reach the Kubernetes API and knows
    /// its node.
    pub enabled: Option<bool>,
    /// A kubeconfig file to reach the API with, instead of the in-cluster service account.
    pub kubeconfig: Option<PathBuf>,
    /// This node's name; default `$NODE_NAME` (from the downward API).
    pub node_name: Option<String>,
    /// Add `k8s.pod.label.<key>` attributes.
    pub labels: bool,
    /// Add `k8s.pod.annotation.<key>` attributes.
    pub annotations: bool,
}

impl Default for PodAssociationConfig {
    fn default() -> Self {
        Self {
            enabled: None,
            kubeconfig: None,
            node_name: None,
            labels: true,
            annotations: false,
        }
    }
}

/// The resource attributes of the pod at an address.
pub trait PeerPods: Send + Sync {
    /// The attributes of this node's pod with IP `ip`, if there is one.
    fn attributes_of(&self, ip: IpAddr) -> Option<Arc<[KeyValue]>>;
}

/// What the agent gives its sources: [`PeerPods`] for a source's settings.
pub trait PodResolver: Send + Sync {
    /// The pods to associate senders with, or `None` when association is off for `config`
    /// (see the module doc); an error when it is required and cannot work.
    fn resolve(
        &self,
        config: &PodAssociationConfig,
        metrics: &ComponentMetrics,
    ) -> Result<Option<Arc<dyn PeerPods>>, BuildError>;
}

/// The peer pods a source uses: from the role's resolver, or none (an error when `enabled:
/// true` on a role without one).
pub fn peer_pods(
    resolver: Option<&Arc<dyn PodResolver>>,
    config: &PodAssociationConfig,
    metrics: &ComponentMetrics,
) -> Result<Option<Arc<dyn PeerPods>>, BuildError> {
    match resolver {
        Some(r) => r.resolve(config, metrics),
        None if config.enabled == Some(true) => Err(BuildError::invalid(
            metrics.name.as_str(),
            "pod_association works on the agent only, which knows its node's pods",
        )),
        None => Ok(None),
    }
}

/// Adds the attributes of the pod at `ip` (if any) to the resources of `events`, keys the
/// sender set excepted. Records sharing an origin keep sharing one.
pub fn associate(pods: Option<&Arc<dyn PeerPods>>, ip: IpAddr, events: &mut Events) {
    let Some(attributes) = pods.and_then(|p| p.attributes_of(ip)) else {
        return;
    };
    // Records of one resource come together: remember the last origin and its replacement.
    let mut last: Option<(*const Origin, Arc<Origin>)> = None;
    events.for_each_origin(|origin| {
        let ptr = Arc::as_ptr(origin);
        let replacement = match &last {
            Some((p, r)) if *p == ptr => r.clone(),
            _ => {
                let r = Arc::new(with_attributes(origin, &attributes));
                last = Some((ptr, r.clone()));
                r
            }
        };
        *origin = replacement;
    });
}

/// `origin` with those of `attributes` whose keys it lacks.
fn with_attributes(origin: &Origin, attributes: &[KeyValue]) -> Origin {
    let mut out = origin.clone();
    for kv in attributes {
        if find_attribute(&origin.resource.attributes, &kv.key).is_none() {
            out.resource.attributes.push(kv.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::event::{Resource, Span};

    struct OnePod(IpAddr);

    impl PeerPods for OnePod {
        fn attributes_of(&self, ip: IpAddr) -> Option<Arc<[KeyValue]>> {
            (ip == self.0).then(|| {
                vec![
                    KeyValue::new("k8s.pod.name", "checkout-7d9f"),
                    KeyValue::new("k8s.namespace.name", "shop"),
                    KeyValue::new("service.name", "from-the-pod"),
                ]
                .into()
            })
        }
    }

    fn span(origin: &Arc<Origin>) -> Span {
        Span {
            origin: origin.clone(),
            ..Span::default()
        }
    }

    fn origin(attributes: Vec<KeyValue>) -> Arc<Origin> {
        Arc::new(Origin {
            resource: Resource {
                attributes,
                ..Resource::default()
            },
            ..Origin::default()
        })
    }

    #[test]
    fn a_pods_attributes_are_added_but_never_over_the_senders() {
        let pod_ip: IpAddr = "10.0.3.7".parse().unwrap();
        let pods: Arc<dyn PeerPods> = Arc::new(OnePod(pod_ip));
        let a = origin(vec![KeyValue::new("service.name", "checkout")]);
        let b = origin(vec![KeyValue::new("k8s.pod.name", "set-by-the-sdk")]);
        let mut events = Events::Spans(vec![span(&a), span(&a), span(&b)]);
        associate(Some(&pods), pod_ip, &mut events);
        let Events::Spans(spans) = events else {
            unreachable!()
        };
        let attrs = |s: &Span| {
            s.origin
                .resource
                .attributes
                .iter()
                .map(|kv| format!("{}={}", kv.key, kv.value.to_json()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            attrs(&spans[0]),
            [
                r#"service.name="checkout""#,
                r#"k8s.pod.name="checkout-7d9f""#,
                r#"k8s.namespace.name="shop""#
            ]
        );
        assert!(Arc::ptr_eq(&spans[0].origin, &spans[1].origin));
        assert_eq!(
            attrs(&spans[2]),
            [
                r#"k8s.pod.name="set-by-the-sdk""#,
                r#"k8s.namespace.name="shop""#,
                r#"service.name="from-the-pod""#
            ]
        );
    }

    #[test]
    fn a_sender_that_is_no_pod_is_sent_on_unchanged() {
        let pods: Arc<dyn PeerPods> = Arc::new(OnePod("10.0.3.7".parse().unwrap()));
        let a = origin(vec![KeyValue::new("service.name", "checkout")]);
        let mut events = Events::Spans(vec![span(&a)]);
        associate(Some(&pods), "10.0.3.8".parse().unwrap(), &mut events);
        associate(None, "10.0.3.7".parse().unwrap(), &mut events);
        let Events::Spans(spans) = events else {
            unreachable!()
        };
        assert!(Arc::ptr_eq(&spans[0].origin, &a));
    }
}
