//! The node's network and filesystems for Container Insights, read from the host's `/proc`
//! under `root` the way cAdvisor reads them for the CloudWatch agent:
//!
//! - Network: the host's interfaces (PID 1's `net/dev`) but those cAdvisor ignores (`lo`,
//!   `veth*`, `docker*`, `nerdctl*`); per interface and summed, the per-second rates of bytes,
//!   packets, drops and errors each way between two readings, and the total of bytes both ways.
//!   The first reading, and an interface's first after it appears or a counter goes back, has
//!   no rate.
//! - Filesystems: each block device (`/dev/*`) mounted on the host, once (at its first mount
//!   point), with node_exporter's exclusions of pseudo and container mounts: capacity, usage
//!   (capacity less free blocks), available to non-root, utilisation (usage over capacity, in
//!   percent), inodes and free inodes. `statvfs` runs with the `host_metrics` deadline, so a
//!   hung mount is skipped, never waited for.

use std::collections::HashSet;
use std::path::Path;

use super::super::host_metrics::filesystem::Filesystems;
use super::super::host_metrics::procfs;
use super::Rates;

/// Interface name prefixes cAdvisor leaves out of a machine's network statistics.
const IGNORED_INTERFACE_PREFIXES: [&str; 4] = ["lo", "veth", "docker", "nerdctl"];

/// The Container Insights field names of network rates, and their column in `/proc/net/dev`
/// (receive: bytes, packets, errs, drop; transmit from column 8).
pub const NETWORK_FIELDS: [(&str, usize); 8] = [
    ("rx_bytes", 0),
    ("rx_packets", 1),
    ("rx_dropped", 3),
    ("rx_errors", 2),
    ("tx_bytes", 8),
    ("tx_packets", 9),
    ("tx_dropped", 11),
    ("tx_errors", 10),
];

/// One interface's rates per second, in [`NETWORK_FIELDS`] order.
#[derive(Clone, Debug, PartialEq)]
pub struct Interface {
    pub name: String,
    pub rates: [Option<f64>; 8],
}

/// One mounted block device.
#[derive(Clone, Debug, PartialEq)]
pub struct Filesystem {
    pub device: String,
    pub fstype: String,
    pub capacity: f64,
    pub usage: f64,
    pub available: f64,
    pub inodes: f64,
    pub inodes_free: f64,
}

/// One reading of the node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeReading {
    pub interfaces: Vec<Interface>,
    pub filesystems: Vec<Filesystem>,
}

/// Reads the node, keeping the counters rates need between readings.
#[derive(Default)]
pub struct NodeStats {
    rates: Rates,
    filesystems: Filesystems,
}

impl NodeStats {
    /// Rates from a `/proc/net/dev` text read at `now_ms`.
    pub fn network(&mut self, net_dev: &str, now_ms: i64) -> Vec<Interface> {
        let mut seen = HashSet::new();
        let mut interfaces = Vec::new();
        for (name, counters) in procfs::net_dev(net_dev) {
            if IGNORED_INTERFACE_PREFIXES
                .iter()
                .any(|p| name.starts_with(p))
            {
                continue;
            }
            let mut rates = [None; 8];
            for (slot, (field, column)) in rates.iter_mut().zip(NETWORK_FIELDS) {
                let key = format!("{name}/{field}");
                seen.insert(key.clone());
                *slot = self.rates.rate(key, counters[column] as f64, now_ms);
            }
            interfaces.push(Interface { name, rates });
        }
        self.rates.keep_only(&seen);
        interfaces
    }

    /// The block devices mounted on the host, from the mount table text.
    pub fn filesystems(&self, root: &Path, mounts: &str) -> Vec<Filesystem> {
        let mut devices = HashSet::new();
        let mut out = Vec::new();
        for (device, mountpoint, fstype, _options) in procfs::mounts(mounts) {
            if !device.starts_with("/dev/")
                || !self.filesystems.wanted(&mountpoint, &fstype)
                || devices.contains(&device)
            {
                continue;
            }
            let path = root.join(mountpoint.trim_start_matches('/'));
            let Some(Ok(usage)) = self.filesystems.usage(path) else {
                continue;
            };
            devices.insert(device.clone());
            out.push(Filesystem {
                device,
                fstype,
                capacity: usage.size,
                usage: usage.size - usage.free,
                available: usage.avail,
                inodes: usage.files,
                inodes_free: usage.files_free,
            });
        }
        out
    }

    /// Reads both under `root` (blocking: `statvfs` runs here).
    pub fn read(&mut self, root: &Path, now_ms: i64) -> Result<NodeReading, String> {
        let net_dev = procfs::read(root, "proc/1/net/dev")
            .or_else(|_| procfs::read(root, "proc/net/dev"))
            .map_err(|e| e.to_string())?;
        let mounts = procfs::read(root, "proc/1/mounts")
            .or_else(|_| procfs::read(root, "proc/mounts"))
            .map_err(|e| e.to_string())?;
        Ok(NodeReading {
            interfaces: self.network(&net_dev, now_ms),
            filesystems: self.filesystems(root, &mounts),
        })
    }
}
