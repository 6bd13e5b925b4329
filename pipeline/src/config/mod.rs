//! Configuration primitives: loading a YAML file into a typed config with errors that name the
//! key's path and the file's line, `${ENV}` interpolation, and units.
//!
//! Every component config is `deny_unknown_fields`; components are internally tagged enums
//! (`type: file`). Errors inside a tagged component lose the YAML parser's position, so the line
//! is found again by walking the block structure of the text along the error's key path.

pub mod disk_buffer;
pub mod error;
pub mod interpolate;
pub mod units;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("line {line}: {message}")]
    Interpolation { line: usize, message: String },
    #[error("{file}{}: {path}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        path: String,
        message: String,
    },
    #[error("{0}")]
    Semantic(String),
}

/// Reads, interpolates and parses a config file.
pub fn load_file<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_str(&text, &path.display().to_string())
}

/// Interpolates and parses config text; `file` names it in errors.
pub fn parse_str<T: DeserializeOwned>(text: &str, file: &str) -> Result<T, ConfigError> {
    let text = interpolate::interpolate(text, |name| std::env::var(name).ok())?;
    let de = serde_yaml_ng::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                _ => None,
            })
            .collect();
        let inner = e.inner();
        let mut message = inner.to_string();
        // serde_yaml may prefix its own partial path ("sinks: unknown field ..."); the full path
        // is reported separately.
        if let Some(i) = message.find("unknown field `") {
            message.drain(..i);
        }
        // serde_yaml may also prefix a dotted path of its own ("a.b: invalid type ...").
        if let Some((head, tail)) = message.split_once(": ") {
            if !head.contains(' ') && path.join(".").starts_with(head) {
                message = tail.to_owned();
            }
        }
        // "unknown field `x`" names the key itself: make it part of the path.
        if let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|m| m.split('`').next())
        {
            if path.last().map(String::as_str) != Some(field) {
                path.push(field.to_owned());
            }
        }
        let line = inner
            .location()
            .map(|l| l.line())
            .filter(|_| !message.contains("unknown field"))
            .or_else(|| locate(&text, &path));
        // serde_yaml appends " at line N column M"; the line is reported separately.
        let message = match message.find(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        ConfigError::Invalid {
            file: file.to_owned(),
            line,
            path: if path.is_empty() {
                "(top level)".into()
            } else {
                path.join(".")
            },
            message,
        }
    })
}

/// Finds the 1-based line of a key path in block-style YAML: each segment is looked for as
/// `key:` (or `- ` list items by index) at a deeper indentation than its parent. Returns the
/// deepest segment found, so a path whose last key is missing still points at its parent.
pub fn locate(text: &str, path: &[String]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut start = 0usize;
    let mut parent_indent: isize = -1;
    let mut found = None;
    for seg in path {
        let mut hit = None;
        let mut list_index = 0usize;
        for (i, raw) in lines.iter().enumerate().skip(start) {
            let trimmed = raw.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let indent = (raw.len() - trimmed.len()) as isize;
            if indent <= parent_indent && i > start {
                break; // left the parent's block
            }
            if let Ok(idx) = seg.parse::<usize>() {
                if trimmed.starts_with("- ") || trimmed == "-" {
                    if list_index == idx {
                        hit = Some((i, indent));
                        break;
                    }
                    list_index += 1;
                }
                continue;
            }
            let body = trimmed.strip_prefix("- ").unwrap_or(trimmed);
            let key = body
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .trim_matches(|c| c == '"' || c == '\'');
            if key == seg
                && body[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .starts_with(':')
            {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                parent_indent = indent;
            }
            None => break,
        }
    }
    found
}

/// For `#[serde(default = "...")]` of a setting that is on unless turned off.
pub fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        #[allow(dead_code)]
        sinks: std::collections::BTreeMap<String, Sink>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
    enum Sink {
        Console {
            #[allow(dead_code)]
            target: Option<String>,
        },
    }

    #[test]
    fn unknown_key_inside_a_tagged_component_names_path_and_line() {
        let text = "sinks:\n  out:\n    type: console\n    targte: stdout\n";
        let e = parse_str::<Top>(text, "f.yaml").unwrap_err().to_string();
        assert!(e.contains("sinks.out.targte"), "{e}");
        assert!(e.contains("line 4"), "{e}");
        assert!(e.contains("unknown field `targte`"), "{e}");
    }

    #[test]
    fn unknown_top_level_key_names_line() {
        let e = parse_str::<Top>("sinks: {}\nsorces: {}\n", "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sorces") && e.contains("line 2"), "{e}");
    }

    #[test]
    fn locate_walks_nested_blocks() {
        let text = "a:\n  b: 1\n  c:\n    - x: 1\n    - y: 2\nd: 3\n";
        assert_eq!(locate(text, &["a".into(), "c".into()]), Some(3));
        assert_eq!(locate(text, &["a".into(), "c".into(), "1".into()]), Some(5));
        assert_eq!(locate(text, &["d".into()]), Some(6));
    }
}
