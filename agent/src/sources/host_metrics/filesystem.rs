//! Filesystems: `node_filesystem_{size,free,avail}_bytes`, `_files`, `_files_free`,
//! `_readonly` and `_device_error` by `device`, `fstype` and `mountpoint`, for the mounts of the
//! host's PID 1, as node_exporter 1.5's `filesystem` collector with its default exclusions.
//!
//! `statvfs` on a dead network mount can hang for ever: each runs on a helper thread with a
//! deadline; a mount that misses it is reported with `device_error` 1 and skipped until its
//! call returns, so one bad mount never stops the rest.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use regex::Regex;

use super::families::Families;
use super::procfs::{self, CollectError};

/// node_exporter's (upstream) defaults. Debian's package excludes `/run`, `/mnt` and `/media`
/// as well.
pub const MOUNT_EXCLUDE: &str =
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
pub const FS_TYPE_EXCLUDE: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
const STATFS_DEADLINE: Duration = Duration::from_secs(5);

/// What `statvfs` says of a mount, in bytes and inodes.
pub(crate) struct Usage {
    pub size: f64,
    pub free: f64,
    pub avail: f64,
    pub files: f64,
    pub files_free: f64,
    pub readonly: bool,
}

pub struct Filesystems {
    mount_exclude: Option<Regex>,
    fs_type_exclude: Option<Regex>,
    /// Mount points whose `statvfs` has not returned yet.
    stuck: Arc<Mutex<HashSet<PathBuf>>>,
}

impl Default for Filesystems {
    fn default() -> Self {
        Self::new(MOUNT_EXCLUDE, FS_TYPE_EXCLUDE)
    }
}

fn statvfs(path: &Path) -> std::io::Result<Usage> {
    let s = rustix::fs::statvfs(path)?;
    let bsize = s.f_bsize as f64;
    Ok(Usage {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
        readonly: s.f_flag.contains(rustix::fs::StatVfsMountFlags::RDONLY),
    })
}

impl Filesystems {
    /// With these exclusions (checked at start-up: see [`super::HostMetricsConfig`]).
    pub fn new(mount_exclude: &str, fs_type_exclude: &str) -> Self {
        Self {
            mount_exclude: Regex::new(mount_exclude).ok(),
            fs_type_exclude: Regex::new(fs_type_exclude).ok(),
            stuck: Arc::default(),
        }
    }

    /// Whether node_exporter would report this mount.
    pub fn wanted(&self, mountpoint: &str, fstype: &str) -> bool {
        !self
            .mount_exclude
            .as_ref()
            .is_some_and(|r| r.is_match(mountpoint))
            && !self
                .fs_type_exclude
                .as_ref()
                .is_some_and(|r| r.is_match(fstype))
    }

    /// `statvfs` of `path` within the deadline; `None` when it is stuck (now or still).
    pub(crate) fn usage(&self, path: PathBuf) -> Option<std::io::Result<Usage>> {
        let stuck = self.stuck.clone();
        if stuck
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&path)
        {
            return None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let p = path.clone();
        let spawned = std::thread::Builder::new()
            .name("sextant-statfs".into())
            .spawn(move || {
                let r = statvfs(&p);
                stuck.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
                let _ = tx.send(r);
            });
        if spawned.is_err() {
            return Some(Err(std::io::Error::other("cannot start a thread")));
        }
        match rx.recv_timeout(STATFS_DEADLINE) {
            Ok(r) => Some(r),
            Err(_) => {
                self.stuck
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(path);
                None
            }
        }
    }

    pub fn collect(&self, root: &Path, out: &mut Families) -> Result<(), CollectError> {
        let text =
            procfs::read(root, "proc/1/mounts").or_else(|_| procfs::read(root, "proc/mounts"))?;
        let mut seen = HashSet::new();
        for (device, mountpoint, fstype, _options) in procfs::mounts(&text) {
            if !self.wanted(&mountpoint, &fstype)
                || !seen.insert((device.clone(), mountpoint.clone()))
            {
                continue;
            }
            let labels = || {
                vec![
                    ("device", device.clone()),
                    ("fstype", fstype.clone()),
                    ("mountpoint", mountpoint.clone()),
                ]
            };
            let path = root.join(mountpoint.trim_start_matches('/'));
            let usage = match self.usage(path) {
                Some(Ok(u)) => u,
                // Unreadable or stuck: an error, as node_exporter says it.
                Some(Err(_)) | None => {
                    out.gauge(
                        "node_filesystem_device_error",
                        "Whether an error occurred while getting statistics for the given device.",
                        labels(),
                        1.0,
                    );
                    continue;
                }
            };
            out.gauge(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                labels(),
                0.0,
            );
            out.gauge(
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                labels(),
                usage.size,
            );
            out.gauge(
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                labels(),
                usage.free,
            );
            out.gauge(
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                labels(),
                usage.avail,
            );
            out.gauge(
                "node_filesystem_files",
                "Filesystem total file nodes.",
                labels(),
                usage.files,
            );
            out.gauge(
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                labels(),
                usage.files_free,
            );
            out.gauge(
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                labels(),
                if usage.readonly { 1.0 } else { 0.0 },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudo_filesystems_and_container_mounts_are_excluded_as_node_exporter_does() {
        let f = Filesystems::default();
        assert!(f.wanted("/", "ext4"));
        assert!(f.wanted("/boot/efi", "vfat"));
        assert!(!f.wanted("/proc", "proc"));
        assert!(!f.wanted("/sys/fs/cgroup", "cgroup2"));
        assert!(!f.wanted("/var/lib/docker/overlay2/x/merged", "overlay"));
        assert!(!f.wanted("/run/credentials/systemd-sysusers.service", "ramfs"));
        assert!(f.wanted("/run", "tmpfs"));
    }
}
