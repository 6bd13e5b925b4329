//! Alertmanager's label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
//! `name!~"regex"` (values quoted with Go's escapes, or bare), as routes, inhibition rules and
//! silences write them; and the legacy `match`/`match_re` maps. Regexes are anchored, as in
//! Alertmanager; a missing label matches as the empty string.

use regex::Regex;

use crate::labels::{is_valid_label_name, Labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    pub fn new(name: &str, op: MatchOp, value: &str) -> Result<Self, String> {
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|e| format!("invalid regex {value:?}: {e}"))?,
            ),
            MatchOp::Equal | MatchOp::NotEqual => None,
        };
        Ok(Self {
            name: name.to_string(),
            op,
            value: value.to_string(),
            regex,
        })
    }

    /// Parses one matcher, e.g. `severity=~"critical|page"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let name_end = text
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .ok_or_else(|| format!("{text:?}: no operator"))?;
        let (name, rest) = text.split_at(name_end);
        let rest = rest.trim_start();
        let (op, value) = [
            ("=~", MatchOp::Regex),
            ("!~", MatchOp::NotRegex),
            ("!=", MatchOp::NotEqual),
            ("=", MatchOp::Equal),
        ]
        .into_iter()
        .find_map(|(token, op)| rest.strip_prefix(token).map(|v| (op, v)))
        .ok_or_else(|| format!("{text:?}: no operator (=, !=, =~, !~)"))?;
        let value = unquote(value.trim()).map_err(|e| format!("{text:?}: {e}"))?;
        Self::new(name, op, &value).map_err(|e| format!("{text:?}: {e}"))
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.name);
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }
}

/// Matchers that must all match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    /// Parses each text; every problem named.
    pub fn parse_all<'a>(texts: impl IntoIterator<Item = &'a String>) -> Result<Self, String> {
        let mut matchers = Vec::new();
        let mut errors = Vec::new();
        for text in texts {
            match Matcher::parse(text) {
                Ok(m) => matchers.push(m),
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(Self(matchers))
        } else {
            Err(errors.join("; "))
        }
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        self.0.iter().all(|m| m.matches(labels))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A quoted value with Go's escapes, or a bare one.
fn unquote(text: &str) -> Result<String, String> {
    let Some(inner) = text.strip_prefix('"') else {
        if text.contains(['"', ',', '{', '}']) {
            return Err(format!("unexpected character in bare value {text:?}"));
        }
        return Ok(text.to_string());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| "unterminated quoted value".to_string())?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(other) => {
                    // Regex escapes (`\.`, `\d`) pass through for the regex to read.
                    out.push('\\');
                    out.push(other);
                }
                None => return Err("trailing backslash".into()),
            },
            '"' => return Err("unescaped quote inside value".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn parses_every_operator_quoted_and_bare() {
        let cases = [
            ("severity=\"critical\"", MatchOp::Equal, "critical"),
            ("severity = critical", MatchOp::Equal, "critical"),
            ("team!=\"db\"", MatchOp::NotEqual, "db"),
            ("alertname=~\"Disk.*|Mem\"", MatchOp::Regex, "Disk.*|Mem"),
            ("job!~\"node\\\\d\"", MatchOp::NotRegex, "node\\d"),
            ("msg=\"say \\\"hi\\\"\"", MatchOp::Equal, "say \"hi\""),
        ];
        for (text, op, value) in cases {
            let m = Matcher::parse(text).unwrap();
            assert_eq!((m.op, m.value.as_str()), (op, value), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_matcher() {
        for text in [
            "severity",
            "sev-erity=\"x\"",
            "a=~\"(\"",
            "a=\"open",
            "=\"x\"",
            "a=b\"c",
        ] {
            assert!(Matcher::parse(text).is_err(), "{text} parsed");
        }
    }

    #[test]
    fn regexes_are_anchored_and_absent_labels_are_empty() {
        let m = Matcher::parse("severity=~\"crit\"").unwrap();
        assert!(!m.matches(&labels(&[("severity", "critical")])));
        assert!(Matcher::parse("severity=~\"crit.*\"")
            .unwrap()
            .matches(&labels(&[("severity", "critical")])));
        assert!(Matcher::parse("team=\"\"").unwrap().matches(&labels(&[])));
        assert!(Matcher::parse("team!~\".+\"")
            .unwrap()
            .matches(&labels(&[("job", "x")])));
    }
}
