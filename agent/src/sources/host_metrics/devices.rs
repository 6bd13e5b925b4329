//! Disk I/O (`/proc/diskstats`) and network devices (`/proc/net/dev` of the host's network
//! namespace, read through PID 1), named as node_exporter 1.5's `diskstats` and `netdev`
//! collectors name them, with its default disk exclusion (partitions, ram, loop, fd).

use std::path::Path;

use regex::Regex;

use super::families::Families;
use super::procfs::{self, CollectError};

/// node_exporter's default `--collector.diskstats.device-exclude`.
const DISK_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";
const SECTOR: f64 = 512.0;

pub struct Devices {
    /// A constant pattern (a test checks it compiles).
    disk_exclude: Option<Regex>,
    /// `network.device_exclude` (checked at start-up).
    network_exclude: Option<Regex>,
}

impl Default for Devices {
    fn default() -> Self {
        Self::new("")
    }
}

impl Devices {
    /// Network devices matching `network_exclude` (a regex; empty: none) are not reported.
    pub fn new(network_exclude: &str) -> Self {
        Self {
            disk_exclude: Regex::new(DISK_EXCLUDE).ok(),
            network_exclude: (!network_exclude.is_empty())
                .then(|| Regex::new(network_exclude).ok())
                .flatten(),
        }
    }

    pub fn disks(&self, root: &Path, out: &mut Families) -> Result<(), CollectError> {
        let stats = procfs::diskstats(&procfs::read(root, "proc/diskstats")?);
        // (field index, name, help, scale)
        const FIELDS: [(usize, &str, &str, f64); 17] = [
            (
                0,
                "node_disk_reads_completed_total",
                "The total number of reads completed successfully.",
                1.0,
            ),
            (
                1,
                "node_disk_reads_merged_total",
                "The total number of reads merged.",
                1.0,
            ),
            (
                2,
                "node_disk_read_bytes_total",
                "The total number of bytes read successfully.",
                SECTOR,
            ),
            (
                3,
                "node_disk_read_time_seconds_total",
                "The total number of seconds spent by all reads.",
                0.001,
            ),
            (
                4,
                "node_disk_writes_completed_total",
                "The total number of writes completed successfully.",
                1.0,
            ),
            (
                5,
                "node_disk_writes_merged_total",
                "The number of writes merged.",
                1.0,
            ),
            (
                6,
                "node_disk_written_bytes_total",
                "The total number of bytes written successfully.",
                SECTOR,
            ),
            (
                7,
                "node_disk_write_time_seconds_total",
                "This is the total number of seconds spent by all writes.",
                0.001,
            ),
            (
                8,
                "node_disk_io_now",
                "The number of I/Os currently in progress.",
                1.0,
            ),
            (
                9,
                "node_disk_io_time_seconds_total",
                "Total seconds spent doing I/Os.",
                0.001,
            ),
            (
                10,
                "node_disk_io_time_weighted_seconds_total",
                "The weighted # of seconds spent doing I/Os.",
                0.001,
            ),
            (
                11,
                "node_disk_discards_completed_total",
                "The total number of discards completed successfully.",
                1.0,
            ),
            (
                12,
                "node_disk_discards_merged_total",
                "The total number of discards merged.",
                1.0,
            ),
            (
                13,
                "node_disk_discarded_sectors_total",
                "The total number of sectors discarded successfully.",
                1.0,
            ),
            (
                14,
                "node_disk_discard_time_seconds_total",
                "This is the total number of seconds spent by all discards.",
                0.001,
            ),
            (
                15,
                "node_disk_flush_requests_total",
                "The total number of flush requests completed successfully",
                1.0,
            ),
            (
                16,
                "node_disk_flush_requests_time_seconds_total",
                "This is the total number of seconds spent by all flush requests.",
                0.001,
            ),
        ];
        for (device, values) in stats {
            if self
                .disk_exclude
                .as_ref()
                .is_some_and(|r| r.is_match(&device))
            {
                continue;
            }
            for (i, name, help, scale) in FIELDS {
                let Some(&v) = values.get(i) else { continue };
                let labels = vec![("device", device.clone())];
                if name == "node_disk_io_now" {
                    out.gauge(name, help, labels, v as f64);
                } else {
                    out.counter(name, help, labels, v as f64 * scale);
                }
            }
        }
        Ok(())
    }

    pub fn network(&self, root: &Path, out: &mut Families) -> Result<(), CollectError> {
        // PID 1's view is the host's network namespace when the host's /proc is mounted
        // (a DaemonSet without hostNetwork); /proc/net is this process's own.
        let text =
            procfs::read(root, "proc/1/net/dev").or_else(|_| procfs::read(root, "proc/net/dev"))?;
        const RECEIVE: [&str; 8] = [
            "bytes",
            "packets",
            "errs",
            "drop",
            "fifo",
            "frame",
            "compressed",
            "multicast",
        ];
        const TRANSMIT: [&str; 8] = [
            "bytes",
            "packets",
            "errs",
            "drop",
            "fifo",
            "colls",
            "carrier",
            "compressed",
        ];
        for (device, values) in procfs::net_dev(&text) {
            if self
                .network_exclude
                .as_ref()
                .is_some_and(|r| r.is_match(&device))
            {
                continue;
            }
            let fields = RECEIVE
                .iter()
                .map(|f| ("receive", f))
                .chain(TRANSMIT.iter().map(|f| ("transmit", f)));
            for (i, (direction, field)) in fields.enumerate() {
                out.counter(
                    &format!("node_network_{direction}_{field}_total"),
                    &format!("Network device statistic {direction}_{field}."),
                    vec![("device", device.clone())],
                    values[i] as f64,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_pseudo_disks_are_excluded_as_node_exporter_does() {
        let d = Devices::default();
        let r = d.disk_exclude.as_ref().unwrap();
        for excluded in ["vda1", "sda2", "nvme0n1p1", "loop0", "ram1", "xvda1"] {
            assert!(r.is_match(excluded), "{excluded}");
        }
        for kept in ["vda", "nvme0n1", "zram0", "dm-0", "md0"] {
            assert!(!r.is_match(kept), "{kept}");
        }
    }
}
