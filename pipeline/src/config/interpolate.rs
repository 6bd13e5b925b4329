//! `${VAR}` and `${VAR:-default}` in config text, replaced before parsing; `$$` is a literal `$`.
//! A variable that is unset and has no default is an error that names it and its line.

use super::ConfigError;

/// Replaces variables in `text` using `lookup`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let line = text[..text.len() - rest.len() + pos].matches('\n').count() + 1;
            let Some(end) = body.find('}') else {
                return Err(ConfigError::Interpolation {
                    line,
                    message: "unterminated ${".into(),
                });
            };
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(ConfigError::Interpolation {
                    line,
                    message: format!("invalid variable name {name:?}"),
                });
            }
            match lookup(name).filter(|v| !(v.is_empty() && default.is_some())).or(default.map(str::to_owned)) {
                Some(v) => out.push_str(&v),
                None => {
                    return Err(ConfigError::Interpolation {
                        line,
                        message: format!("environment variable {name} is not set and has no default (write ${{{name}:-default}})"),
                    })
                }
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "REGION" => Some("eu-west-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn replaces_variables_defaults_and_escapes() {
        assert_eq!(interpolate("r: ${REGION}", env).unwrap(), "r: eu-west-1");
        assert_eq!(
            interpolate("r: ${NOPE:-us-east-1}", env).unwrap(),
            "r: us-east-1"
        );
        assert_eq!(interpolate("r: ${EMPTY:-x}", env).unwrap(), "r: x");
        assert_eq!(
            interpolate("cost: $$5 and $x", env).unwrap(),
            "cost: $5 and $x"
        );
    }

    #[test]
    fn unset_variable_names_itself_and_its_line() {
        let e = interpolate("a: 1\nb: ${MISSING}", env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MISSING") && e.contains("line 2"), "{e}");
    }
}
