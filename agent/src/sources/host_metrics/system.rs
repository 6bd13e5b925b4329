//! CPU, memory, load, file descriptors, boot time and pressure, named as node_exporter 1.5
//! names them (`cpu`, `meminfo`, `loadavg`, `filefd`, `stat`, `time`, `pressure` collectors).

use std::path::Path;

use super::families::Families;
use super::procfs::{self, CollectError};

/// USER_HZ: the unit of `/proc/stat`'s times, 100 on every Linux architecture Sextant runs on
/// (x86_64 and arm64 alike).
const USER_HZ: f64 = 100.0;

const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// `node_cpu_seconds_total{cpu,mode}`, `node_cpu_guest_seconds_total{cpu,mode}` and
/// `node_boot_time_seconds`; the boot time is returned (counters started then).
pub fn cpu(root: &Path, out: &mut Families) -> Result<Option<u64>, CollectError> {
    let stat = procfs::stat(&procfs::read(root, "proc/stat")?);
    if stat.cpus.is_empty() {
        return Err(CollectError::Malformed("proc/stat".into(), "no cpu lines"));
    }
    for (cpu, v) in &stat.cpus {
        for (i, mode) in CPU_MODES.iter().enumerate() {
            out.counter(
                "node_cpu_seconds_total",
                "Seconds the CPUs spent in each mode.",
                vec![("cpu", cpu.clone()), ("mode", (*mode).to_string())],
                v[i] as f64 / USER_HZ,
            );
        }
        for (i, mode) in ["user", "nice"].iter().enumerate() {
            out.counter(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                vec![("cpu", cpu.clone()), ("mode", (*mode).to_string())],
                v[8 + i] as f64 / USER_HZ,
            );
        }
    }
    if let Some(boot) = stat.boot_time {
        out.gauge(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            vec![],
            boot as f64,
        );
    }
    Ok(stat.boot_time)
}

/// `node_memory_<field>_bytes` (or without `_bytes` for counts such as `HugePages_Total`).
pub fn memory(root: &Path, out: &mut Families) -> Result<(), CollectError> {
    let fields = procfs::meminfo(&procfs::read(root, "proc/meminfo")?);
    if fields.is_empty() {
        return Err(CollectError::Malformed("proc/meminfo".into(), "no fields"));
    }
    for (key, value, kb) in fields {
        let key = key.replace('(', "_").replace(')', "");
        let (name, value) = if kb {
            (format!("node_memory_{key}_bytes"), value as f64 * 1024.0)
        } else {
            (format!("node_memory_{key}"), value as f64)
        };
        out.gauge(&name, "Memory information field.", vec![], value);
    }
    Ok(())
}

/// `node_load1`, `node_load5`, `node_load15`.
pub fn load(root: &Path, out: &mut Families) -> Result<(), CollectError> {
    let text = procfs::read(root, "proc/loadavg")?;
    let loads: Vec<f64> = text
        .split_ascii_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect();
    let [l1, l5, l15] = loads[..] else {
        return Err(CollectError::Malformed(
            "proc/loadavg".into(),
            "fewer than three loads",
        ));
    };
    out.gauge("node_load1", "1m load average.", vec![], l1);
    out.gauge("node_load5", "5m load average.", vec![], l5);
    out.gauge("node_load15", "15m load average.", vec![], l15);
    Ok(())
}

/// `node_filefd_allocated`, `node_filefd_maximum`.
pub fn filefd(root: &Path, out: &mut Families) -> Result<(), CollectError> {
    let text = procfs::read(root, "proc/sys/fs/file-nr")?;
    let v: Vec<f64> = text
        .split_ascii_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [allocated, _, maximum] = v[..] else {
        return Err(CollectError::Malformed(
            "proc/sys/fs/file-nr".into(),
            "not three numbers",
        ));
    };
    out.gauge(
        "node_filefd_allocated",
        "File descriptor statistics: allocated.",
        vec![],
        allocated,
    );
    out.gauge(
        "node_filefd_maximum",
        "File descriptor statistics: maximum.",
        vec![],
        maximum,
    );
    Ok(())
}

/// `node_pressure_{cpu,io,memory}_{waiting,stalled}_seconds_total` (PSI); nothing on kernels
/// without `/proc/pressure`.
pub fn pressure(root: &Path, out: &mut Families) -> Result<(), CollectError> {
    for resource in ["cpu", "io", "memory"] {
        let (some, full) =
            procfs::pressure(&procfs::read(root, &format!("proc/pressure/{resource}"))?);
        let some = some.ok_or(CollectError::Malformed(
            format!("proc/pressure/{resource}"),
            "no some line",
        ))?;
        let help = match resource {
            "cpu" => "Total time in seconds that processes have waited for CPU time",
            "io" => "Total time in seconds that processes have waited due to IO congestion",
            _ => "Total time in seconds that processes have waited for memory",
        };
        out.counter(
            &format!("node_pressure_{resource}_waiting_seconds_total"),
            help,
            vec![],
            some as f64 / 1e6,
        );
        if resource != "cpu" {
            if let Some(full) = full {
                let help = if resource == "io" {
                    "Total time in seconds no process could make progress due to IO congestion"
                } else {
                    "Total time in seconds no process could make progress due to memory congestion"
                };
                out.counter(
                    &format!("node_pressure_{resource}_stalled_seconds_total"),
                    help,
                    vec![],
                    full as f64 / 1e6,
                );
            }
        }
    }
    Ok(())
}

/// `node_time_seconds`.
pub fn time(out: &mut Families, now_s: f64) {
    out.gauge(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        vec![],
        now_s,
    );
}
