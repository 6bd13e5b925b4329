//! Durations and sizes as they are written in config files: `"15s"`, `"250ms"`, `"64MiB"`,
//! `"1.5GB"`. A bare integer size is bytes; a bare number is not accepted as a duration (a unit
//! is required, so `timeout: 30` cannot mean two different things).

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer};

/// A duration with a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DurationValue(pub Duration);

impl<'de> Deserialize<'de> for DurationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        let s = match Raw::deserialize(d)? {
            Raw::Number(n) => {
                return Err(de::Error::custom(format!(
                    "duration {n} has no unit; write it like \"{n}s\" or \"{n}ms\""
                )))
            }
            Raw::Text(s) => s,
        };
        humantime::parse_duration(s.trim())
            .map(DurationValue)
            .map_err(|e| {
                de::Error::custom(format!(
                    "invalid duration {s:?} ({e}); write it with a unit, like \"15s\" or \"250ms\""
                ))
            })
    }
}

impl fmt::Display for DurationValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// A size in bytes, written with a unit (`KiB`, `MiB`, `GiB`, `KB`, `MB`, ...) or as bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSizeValue(pub u64);

impl ByteSizeValue {
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl<'de> Deserialize<'de> for ByteSizeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSizeValue(n)),
            Raw::Text(s) => s
                .trim()
                .parse::<bytesize::ByteSize>()
                .map(|b| ByteSizeValue(b.as_u64()))
                .map_err(|e| {
                    de::Error::custom(format!(
                        "invalid size {s:?} ({e}); write it like \"64MiB\" or \"512KiB\""
                    ))
                }),
        }
    }
}

impl fmt::Display for ByteSizeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", bytesize::ByteSize(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        d: DurationValue,
        s: ByteSizeValue,
    }

    fn parse(y: &str) -> Result<T, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(y)
    }

    #[test]
    fn units_parse() {
        let t = parse("d: 15s\ns: 64MiB").unwrap();
        assert_eq!(t.d.0, Duration::from_secs(15));
        assert_eq!(t.s.0, 64 * 1024 * 1024);
        let t = parse("d: 250ms\ns: 1000").unwrap();
        assert_eq!(t.d.0, Duration::from_millis(250));
        assert_eq!(t.s.0, 1000);
        assert_eq!(parse("d: 1m\ns: 2KB").unwrap().s.0, 2000);
    }

    #[test]
    fn bad_units_are_errors() {
        assert!(parse("d: 15\ns: 1").is_err());
        assert!(parse("d: 1s\ns: lots").is_err());
    }
}
