//! The `/proc` and `/sys` files the collectors read, parsed; each function takes the file's
//! text, so tests feed it captured files (x86_64 and arm64 alike).

/// Why a collector produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}: {1}")]
    Read(String, std::io::Error),
    #[error("{0}: malformed ({1})")]
    Malformed(String, &'static str),
}

pub fn read(root: &std::path::Path, rel: &str) -> Result<String, CollectError> {
    let path = root.join(rel);
    std::fs::read_to_string(&path).map_err(|e| CollectError::Read(path.display().to_string(), e))
}

/// `/proc/stat`: per-CPU jiffies, and the boot time.
#[derive(Debug, Default, PartialEq)]
pub struct Stat {
    /// (cpu number, [user, nice, system, idle, iowait, irq, softirq, steal, guest, guest_nice])
    pub cpus: Vec<(String, [u64; 10])>,
    pub boot_time: Option<u64>,
}

pub fn stat(text: &str) -> Stat {
    let mut out = Stat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        if let Some(n) = key.strip_prefix("cpu").filter(|n| !n.is_empty()) {
            let mut v = [0u64; 10];
            for (slot, f) in v.iter_mut().zip(fields) {
                *slot = f.parse().unwrap_or(0);
            }
            out.cpus.push((n.to_string(), v));
        } else if key == "btime" {
            out.boot_time = fields.next().and_then(|f| f.parse().ok());
        }
    }
    out
}

/// `/proc/meminfo`: (field, value, whether it is in kB).
pub fn meminfo(text: &str) -> Vec<(String, u64, bool)> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let mut parts = rest.split_ascii_whitespace();
            let value: u64 = parts.next()?.parse().ok()?;
            let kb = parts.next() == Some("kB");
            Some((key.trim().to_string(), value, kb))
        })
        .collect()
}

/// `/proc/diskstats`: (device, fields after the name).
pub fn diskstats(text: &str) -> Vec<(String, Vec<u64>)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            let (_major, _minor) = (parts.next()?, parts.next()?);
            let device = parts.next()?.to_string();
            let values = parts.map(|p| p.parse().unwrap_or(0)).collect();
            Some((device, values))
        })
        .collect()
}

/// `/proc/net/dev`: (interface, 16 counters: 8 receive, 8 transmit).
pub fn net_dev(text: &str) -> Vec<(String, Vec<u64>)> {
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let values: Vec<u64> = rest
                .split_ascii_whitespace()
                .map(|p| p.parse().unwrap_or(0))
                .collect();
            (values.len() >= 16).then(|| (name.trim().to_string(), values))
        })
        .collect()
}

/// A `/proc/pressure/*` file: the `total=` of its `some` and `full` lines (microseconds).
pub fn pressure(text: &str) -> (Option<u64>, Option<u64>) {
    let total = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| {
                l.split_ascii_whitespace()
                    .find_map(|f| f.strip_prefix("total="))
            })
            .and_then(|v| v.parse().ok())
    };
    (total("some "), total("full "))
}

/// `/proc/mounts`: (device, mount point, fs type, options), with the octal escapes of the
/// kernel (`\040` for a space) undone.
pub fn mounts(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            Some((
                unescape(parts.next()?),
                unescape(parts.next()?),
                parts.next()?.to_string(),
                parts.next().unwrap_or("").to_string(),
            ))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_of_x86_64_and_arm64_parse_alike() {
        // arm64's /proc/stat has the same cpu lines; /proc/cpuinfo (not read) differs.
        let s = stat("cpu  10 0 5 100 1 0 0 0 0 0\ncpu0 4 1 2 50 1 0 3 0 0 0\ncpu1 6 0 3 50 0 0 0 7 2 0\nintr 1\nbtime 1700000000\n");
        assert_eq!(s.cpus.len(), 2);
        assert_eq!(
            s.cpus[1],
            ("1".to_string(), [6, 0, 3, 50, 0, 0, 0, 7, 2, 0])
        );
        assert_eq!(s.boot_time, Some(1_700_000_000));
        let m = meminfo(
            "MemTotal:       16384 kB\nActive(anon):     10 kB\nHugePages_Total:       0\n",
        );
        assert_eq!(m[1], ("Active(anon)".to_string(), 10, true));
        assert_eq!(m[2], ("HugePages_Total".to_string(), 0, false));
        assert_eq!(pressure("some avg10=0.00 avg60=2.07 avg300=10.64 total=808668261\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n"), (Some(808_668_261), Some(5)));
        let mounts = mounts("/dev/vda1 /mnt/with\\040space ext4 rw,relatime 0 0\n");
        assert_eq!(mounts[0].1, "/mnt/with space");
        let net = net_dev("Inter-|\n face |\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n");
        assert_eq!(net[0].0, "eth0");
        assert_eq!(net[0].1[8], 9);
    }
}
