//! Silences from a file: each mutes the alerts all its matchers match between `starts_at` and
//! `ends_at` (RFC 3339). The file is read whole; a file with any bad silence is refused with
//! every problem named, and the caller keeps the silences it had.
//!
//! ```yaml
//! silences:
//!   - matchers: ['alertname="DiskFull"', 'instance=~"db-.*"']
//!     starts_at: 2026-12-03T08:00:00Z
//!     ends_at: 2026-12-03T10:00:00Z
//!     created_by: ops@example.com
//!     comment: disk swap on the db nodes
//! ```

use serde::Deserialize;

use super::matcher::Matchers;
use crate::labels::Labels;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilencesFile {
    #[serde(default)]
    silences: Vec<SilenceConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceConfig {
    matchers: Vec<String>,
    starts_at: String,
    ends_at: String,
    #[serde(default)]
    created_by: String,
    #[serde(default)]
    comment: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Silence {
    pub matchers: Matchers,
    pub starts_at_ms: i64,
    pub ends_at_ms: i64,
    pub created_by: String,
    pub comment: String,
}

/// The silences in force.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Silences(pub Vec<Silence>);

impl Silences {
    /// Parses a silences file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: SilencesFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        let mut silences = Vec::new();
        let mut errors = Vec::new();
        for (i, s) in file.silences.into_iter().enumerate() {
            let time = |field: &str, text: &str| {
                chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.timestamp_millis())
                    .map_err(|e| format!("silences[{i}].{field}: {text:?}: {e}"))
            };
            let matchers = Matchers::parse_all(&s.matchers)
                .map_err(|e| format!("silences[{i}].matchers: {e}"));
            match (
                matchers,
                time("starts_at", &s.starts_at),
                time("ends_at", &s.ends_at),
            ) {
                (Ok(m), _, _) if m.is_empty() => {
                    errors.push(format!("silences[{i}].matchers: at least one matcher"))
                }
                (Ok(_), Ok(start), Ok(end)) if end <= start => {
                    errors.push(format!("silences[{i}]: ends_at must be after starts_at"))
                }
                (Ok(matchers), Ok(starts_at_ms), Ok(ends_at_ms)) => silences.push(Silence {
                    matchers,
                    starts_at_ms,
                    ends_at_ms,
                    created_by: s.created_by,
                    comment: s.comment,
                }),
                (m, start, end) => {
                    errors.extend([m.err(), start.err(), end.err()].into_iter().flatten())
                }
            }
        }
        if errors.is_empty() {
            Ok(Self(silences))
        } else {
            Err(errors.join("\n"))
        }
    }

    /// Whether a silence in force at `now_ms` mutes `alert`.
    pub fn mutes(&self, alert: &Labels, now_ms: i64) -> bool {
        self.0
            .iter()
            .any(|s| s.starts_at_ms <= now_ms && now_ms < s.ends_at_ms && s.matchers.matches(alert))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
silences:
  - matchers: ['alertname="DiskFull"', 'instance=~"db-.*"']
    starts_at: 2026-12-03T08:00:00Z
    ends_at: 2026-12-03T10:00:00+00:00
    created_by: ops
    comment: disk swap
"#;

    #[test]
    fn a_silence_mutes_what_it_matches_while_in_force() {
        let silences = Silences::parse(FILE).unwrap();
        let start = chrono::DateTime::parse_from_rfc3339("2026-12-03T08:00:00Z")
            .unwrap()
            .timestamp_millis();
        let db = Labels::from_pairs([("alertname", "DiskFull"), ("instance", "db-1")]);
        let web = Labels::from_pairs([("alertname", "DiskFull"), ("instance", "web-1")]);
        assert!(!silences.mutes(&db, start - 1));
        assert!(silences.mutes(&db, start));
        assert!(!silences.mutes(&web, start));
        assert!(silences.mutes(&db, start + 2 * 3_600_000 - 1));
        assert!(!silences.mutes(&db, start + 2 * 3_600_000));
    }

    #[test]
    fn a_bad_file_is_refused_with_every_problem() {
        let bad = r#"
silences:
  - matchers: ['alertname~"x"']
    starts_at: yesterday
    ends_at: 2026-12-03T10:00:00Z
  - matchers: []
    starts_at: 2026-12-03T08:00:00Z
    ends_at: 2026-12-03T10:00:00Z
  - matchers: ['a="b"']
    starts_at: 2026-12-03T10:00:00Z
    ends_at: 2026-12-03T08:00:00Z
"#;
        let error = Silences::parse(bad).unwrap_err();
        assert_eq!(error.lines().count(), 4, "{error}");
        assert!(error.contains("silences[0].matchers"));
        assert!(error.contains("silences[0].starts_at"));
        assert!(error.contains("silences[1].matchers: at least one"));
        assert!(error.contains("silences[2]: ends_at must be after"));
        assert!(Silences::parse("silences: [{matchers: ['a=\"b\"']}]").is_err());
    }
}
