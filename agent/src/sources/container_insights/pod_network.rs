//! Pod network rates from the kubelet's `/metrics/cadvisor`, as the CloudWatch agent derives
//! `pod_network_*` from cAdvisor: cAdvisor counts a pod's traffic on its sandbox, per
//! interface (`container_network_{receive,transmit}_{bytes,packets,packets_dropped,errors}_total`
//! with `namespace`, `pod`, `interface`); each becomes a per-second rate between two readings
//! by cAdvisor's own timestamps. A pod or interface seen for the first time, or a counter that
//! went back (a new sandbox), has no rate yet. Other series are skipped unread.

use std::collections::{HashMap, HashSet};

use super::node_stats::Interface;
use super::{label_value, Rates};
use crate::exposition::labels::parse_labels;
use crate::exposition::{Format, Lexer, Line};

/// cAdvisor's counter names, in [`super::node_stats::NETWORK_FIELDS`] order.
const COUNTERS: [&str; 8] = [
    "container_network_receive_bytes_total",
    "container_network_receive_packets_total",
    "container_network_receive_packets_dropped_total",
    "container_network_receive_errors_total",
    "container_network_transmit_bytes_total",
    "container_network_transmit_packets_total",
    "container_network_transmit_packets_dropped_total",
    "container_network_transmit_errors_total",
];

/// Network rates by (namespace, pod), per interface, from one `/metrics/cadvisor` body.
pub fn read(
    rates: &mut Rates,
    body: &[u8],
    now_ms: i64,
) -> Result<HashMap<(String, String), Vec<Interface>>, String> {
    let mut pods: HashMap<(String, String), Vec<Interface>> = HashMap::new();
    let mut seen = HashSet::new();
    let mut lexer = Lexer::new(body, Format::Text);
    let mut labels = Vec::new();
    while let Some(line) = lexer.next_line().map_err(|e| e.to_string())? {
        let Line::Sample(sample) = line else { continue };
        let Some(field) = COUNTERS.iter().position(|c| c.as_bytes() == sample.name) else {
            continue;
        };
        parse_labels(sample.labels, &mut labels)
            .map_err(|e| format!("line {}: {e}", lexer.line()))?;
        let get = |name: &str| label_value(&labels, name);
        let (namespace, pod, interface) = (get("namespace"), get("pod"), get("interface"));
        if namespace.is_empty() || pod.is_empty() || interface.is_empty() {
            continue;
        }
        let key = format!("{namespace}/{pod}/{interface}/{field}");
        // One series per pod, interface and counter (a second, from another cgroup, is the
        // same traffic counted again).
        if !seen.insert(key.clone()) {
            continue;
        }
        let rate = rates.rate(key, sample.value, sample.timestamp_ms.unwrap_or(now_ms));
        let interfaces = pods.entry((namespace, pod)).or_default();
        let slot = match interfaces.iter().position(|i| i.name == interface) {
            Some(i) => i,
            None => {
                interfaces.push(Interface {
                    name: interface,
                    rates: [None; 8],
                });
                interfaces.len() - 1
            }
        };
        interfaces[slot].rates[field] = rate;
    }
    rates.keep_only(&seen);
    Ok(pods)
}
