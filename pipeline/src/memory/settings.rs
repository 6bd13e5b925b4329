//! `memory:` of the config file: the process's budget and the two limits derived from it.

use serde::Deserialize;

use crate::config::disk_buffer::DiskBufferSettings;
use crate::config::error::BuildError;
use crate::config::units::ByteSizeValue;

/// `memory:` of the config file.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemorySettings {
    /// The budget: resident memory stays under it. Sets the soft limit to 80% of it and the
    /// hard limit to 90% unless they are given.
    pub limit: Option<ByteSizeValue>,
    /// Resident memory above which receivers answer retry-later and file sources pause.
    pub soft_limit: Option<ByteSizeValue>,
    /// Resident memory above which sinks without `queue.disk` spill new batches to disk (until
    /// it is back under the soft limit) and the allocator gives freed memory back.
    pub hard_limit: Option<ByteSizeValue>,
    /// The spill buffers (one per sink without `queue.disk`, under the sink's data directory).
    #[serde(default)]
    pub spill: DiskBufferSettings,
}

/// The limits in force, in bytes of resident memory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

impl MemorySettings {
    pub fn limits(&self) -> Limits {
        let share = |percent: u64| self.limit.map(|l| l.0 / 100 * percent);
        Limits {
            soft: self.soft_limit.map(|v| v.0).or_else(|| share(80)),
            hard: self.hard_limit.map(|v| v.0).or_else(|| share(90)),
        }
    }

    /// The spill buffers' settings when there is a hard limit to spill at.
    pub fn spill(&self) -> Option<&DiskBufferSettings> {
        self.limits().hard.map(|_| &self.spill)
    }

    /// Refuses limits that contradict each other, at start-up.
    pub fn validate(&self) -> Result<(), BuildError> {
        let Limits { soft, hard } = self.limits();
        let budget = self.limit.map(|l| l.0);
        let bad = |why: String| Err(BuildError::invalid("memory", why));
        if let (Some(soft), Some(hard)) = (soft, hard) {
            if soft >= hard {
                return bad(format!(
                    "soft_limit ({soft} bytes) must be below hard_limit ({hard} bytes)"
                ));
            }
        }
        if let Some(budget) = budget {
            for (name, value) in [("soft_limit", soft), ("hard_limit", hard)] {
                if value.is_some_and(|v| v >= budget) {
                    return bad(format!("{name} must be below limit ({budget} bytes)"));
                }
            }
        }
        self.spill.validate("memory.spill")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> MemorySettings {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    #[test]
    fn the_budget_sets_soft_and_hard_limits_that_explicit_ones_override() {
        let s = settings("limit: 100MiB");
        assert_eq!(
            s.limits(),
            Limits {
                soft: Some(80 << 20),
                hard: Some(90 << 20)
            }
        );
        assert!(s.spill().is_some());
        s.validate().unwrap();
        let s = settings("{ limit: 100MiB, soft_limit: 50MiB }");
        assert_eq!(s.limits().soft, Some(50 << 20));
        s.validate().unwrap();
        let s = settings("soft_limit: 50MiB");
        assert_eq!(
            s.limits(),
            Limits {
                soft: Some(50 << 20),
                hard: None
            }
        );
        assert!(s.spill().is_none(), "no hard limit, nothing spills");
    }

    #[test]
    fn contradicting_limits_are_refused_at_start_up() {
        for yaml in [
            "{ soft_limit: 90MiB, hard_limit: 80MiB }",
            "{ soft_limit: 80MiB, hard_limit: 80MiB }",
            "{ limit: 100MiB, hard_limit: 100MiB }",
            "{ limit: 100MiB, soft_limit: 95MiB }",
            "{ limit: 100MiB, spill: { max_segment_bytes: 1KiB } }",
        ] {
            let e = settings(yaml).validate().unwrap_err().to_string();
            assert!(e.contains("memory"), "{yaml}: {e}");
        }
    }
}
