//! The functions alert templates call: Go's builtins (`and or not len index print printf
//! println eq ne lt le gt ge urlquery html js`) and Prometheus's (`query first label value
//! strvalue sortByLabel humanize humanize1024 humanizeDuration humanizePercentage
//! humanizeTimestamp toTime title toUpper toLower reReplaceAll match stripPort graphLink
//! tableLink pathPrefix externalURL safeHtml`).

use super::value::{QuerySample, Val};
use super::Context;
use sextant_pipeline::gofmt::{format_e, format_f, format_g};

const FUNCTIONS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "urlquery",
    "html",
    "js",
    "query",
    "first",
    "label",
    "value",
    "strvalue",
    "sortByLabel",
    "humanize",
    "humanize1024",
    "humanizeDuration",
    "humanizePercentage",
    "humanizeTimestamp",
    "toTime",
    "title",
    "toUpper",
    "toLower",
    "reReplaceAll",
    "match",
    "stripPort",
    "graphLink",
    "tableLink",
    "pathPrefix",
    "externalURL",
    "safeHtml",
];

pub(crate) fn is_function(name: &str) -> bool {
    FUNCTIONS.contains(&name)
}

fn arity(name: &str, args: &[Val], n: usize) -> Result<(), String> {
    if args.len() == n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ))
    }
}

fn string_arg(name: &str, v: &Val) -> Result<String, String> {
    match v {
        Val::Str(s) => Ok(s.clone()),
        other => Err(format!(
            "error calling {name}: wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

/// Prometheus's `convertToFloat`.
fn float_arg(name: &str, v: &Val) -> Result<f64, String> {
    match v {
        Val::Float(f) => Ok(*f),
        Val::Int(i) => Ok(*i as f64),
        Val::Str(s) => s.trim().parse::<f64>().map_err(|_| {
            format!("error calling {name}: strconv.ParseFloat: parsing {s:?}: invalid syntax")
        }),
        other => Err(format!(
            "error calling {name}: can't convert {} to float",
            other.type_name()
        )),
    }
}

fn sample_arg(name: &str, v: &Val) -> Result<QuerySample, String> {
    match v {
        Val::Sample(s) => Ok(s.clone()),
        other => Err(format!(
            "error calling {name}: wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

pub(crate) fn call(name: &str, args: Vec<Val>, context: &Context<'_>) -> Result<Val, String> {
    match name {
        "and" => Ok(args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Val::Nil)),
        "or" => Ok(args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Val::Nil)),
        "not" => {
            arity(name, &args, 1)?;
            Ok(Val::Bool(!args[0].truthy()))
        }
        "len" => {
            arity(name, &args, 1)?;
            match &args[0] {
                Val::Str(s) => Ok(Val::Int(s.len() as i64)),
                Val::Map(m) => Ok(Val::Int(m.len() as i64)),
                Val::Samples(s) => Ok(Val::Int(s.len() as i64)),
                other => Err(format!(
                    "error calling len: len of type {}",
                    other.type_name()
                )),
            }
        }
        "index" => {
            let mut args = args.into_iter();
            let mut item = args
                .next()
                .ok_or("wrong number of args for index: want at least 1 got 0")?;
            for key in args {
                item = match (&item, &key) {
                    (Val::Map(m), Val::Str(k)) => Val::Str(m.get(k).cloned().unwrap_or_default()),
                    (Val::Samples(s), Val::Int(i)) => s
                        .get(
                            usize::try_from(*i).map_err(|_| {
                                format!("error calling index: index out of range: {i}")
                            })?,
                        )
                        .cloned()
                        .map(Val::Sample)
                        .ok_or(format!("error calling index: index out of range: {i}"))?,
                    _ => {
                        return Err(format!(
                            "error calling index: can't index item of type {}",
                            item.type_name()
                        ))
                    }
                };
            }
            Ok(item)
        }
        "print" => Ok(Val::Str(go_sprint(&args))),
        "println" => Ok(Val::Str(
            args.iter().map(Val::print).collect::<Vec<_>>().join(" ") + "\n",
        )),
        "printf" => {
            let mut args = args.into_iter();
            let format = match args.next() {
                Some(Val::Str(f)) => f,
                _ => {
                    return Err(
                        "error calling printf: wrong type for value; expected string".into(),
                    )
                }
            };
            Ok(Val::Str(sprintf(&format, &args.collect::<Vec<_>>())))
        }
        "eq" | "ne" | "lt" | "le" | "gt" | "ge" => compare(name, &args).map(Val::Bool),
        "urlquery" => Ok(Val::Str(query_escape(&go_sprint(&args)))),
        "html" | "safeHtml" => Ok(Val::Str(html_escape(&go_sprint(&args)))),
        "js" => Ok(Val::Str(
            go_sprint(&args)
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('"', "\\\""),
        )),
        "query" => {
            arity(name, &args, 1)?;
            let query = string_arg(name, &args[0])?;
            (context.query)(&query)
                .map(Val::Samples)
                .map_err(|e| format!("error calling query: {e}"))
        }
        "first" => match args.first() {
            Some(Val::Samples(s)) => s.first().cloned().map(Val::Sample).ok_or_else(|| {
                "error calling first: first() called on vector with no elements".into()
            }),
            _ => Err(
                "error calling first: wrong type for value; expected template.queryResult".into(),
            ),
        },
        "label" => {
            arity(name, &args, 2)?;
            let label = string_arg(name, &args[0])?;
            let sample = sample_arg(name, &args[1])?;
            Ok(Val::Str(
                sample.labels.get(&label).cloned().unwrap_or_default(),
            ))
        }
        "value" => {
            arity(name, &args, 1)?;
            Ok(Val::Float(sample_arg(name, &args[0])?.value))
        }
        "strvalue" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(
                sample_arg(name, &args[0])?
                    .labels
                    .get("__value__")
                    .cloned()
                    .unwrap_or_default(),
            ))
        }
        "sortByLabel" => {
            arity(name, &args, 2)?;
            let label = string_arg(name, &args[0])?;
            match &args[1] {
                Val::Samples(samples) => {
                    let mut samples = samples.clone();
                    samples.sort_by(|a, b| a.labels.get(&label).cmp(&b.labels.get(&label)));
                    Ok(Val::Samples(samples))
                }
                other => Err(format!(
                    "error calling sortByLabel: wrong type {}",
                    other.type_name()
                )),
            }
        }
        "humanize" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(humanize(float_arg(name, &args[0])?)))
        }
        "humanize1024" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(humanize_1024(float_arg(name, &args[0])?)))
        }
        "humanizeDuration" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(humanize_duration(float_arg(name, &args[0])?)))
        }
        "humanizePercentage" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(format!(
                "{}%",
                format_g(float_arg(name, &args[0])? * 100.0, 4)
            )))
        }
        "humanizeTimestamp" | "toTime" => {
            arity(name, &args, 1)?;
            let v = float_arg(name, &args[0])?;
            if v.is_nan() || v.is_infinite() {
                return Ok(Val::Str(format_g(v, 4)));
            }
            go_time(v).map(Val::Str).ok_or_else(|| {
                format!("error calling {name}: {} cannot be represented as a nanoseconds timestamp since it overflows int64", format_g(v, -1))
            })
        }
        "title" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(title(&string_arg(name, &args[0])?)))
        }
        "toUpper" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(string_arg(name, &args[0])?.to_uppercase()))
        }
        "toLower" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(string_arg(name, &args[0])?.to_lowercase()))
        }
        "reReplaceAll" => {
            arity(name, &args, 3)?;
            let pattern = string_arg(name, &args[0])?;
            let replacement = string_arg(name, &args[1])?;
            let text = string_arg(name, &args[2])?;
            let regex = regex::Regex::new(&pattern)
                .map_err(|e| format!("error calling reReplaceAll: {e}"))?;
            Ok(Val::Str(
                regex.replace_all(&text, replacement.as_str()).into_owned(),
            ))
        }
        "match" => {
            arity(name, &args, 2)?;
            let pattern = string_arg(name, &args[0])?;
            let text = string_arg(name, &args[1])?;
            let regex =
                regex::Regex::new(&pattern).map_err(|e| format!("error calling match: {e}"))?;
            Ok(Val::Bool(regex.is_match(&text)))
        }
        "stripPort" => {
            arity(name, &args, 1)?;
            Ok(Val::Str(strip_port(&string_arg(name, &args[0])?)))
        }
        "graphLink" | "tableLink" => {
            arity(name, &args, 1)?;
            let expr = string_arg(name, &args[0])?;
            let tab = if name == "graphLink" { 0 } else { 1 };
            Ok(Val::Str(format!(
                "/graph?g0.expr={}&g0.tab={tab}",
                query_escape(&expr)
            )))
        }
        "pathPrefix" => Ok(Val::Str(url_path(context.external_url))),
        "externalURL" => Ok(Val::Str(context.external_url.to_string())),
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Go's `fmt.Sprint`: spaces only between operands when neither is a string.
fn go_sprint(args: &[Val]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Val::Str(_)) && !matches!(args[i - 1], Val::Str(_)) {
            out.push(' ');
        }
        out.push_str(&arg.print());
    }
    out
}

fn compare(name: &str, args: &[Val]) -> Result<bool, String> {
    let incompatible = || format!("error calling {name}: incompatible types for comparison");
    let (first, rest) = args
        .split_first()
        .ok_or_else(|| format!("error calling {name}: missing argument for comparison"))?;
    if matches!(first, Val::Nil) {
        return Err(format!("error calling {name}: invalid type for comparison"));
    }
    if name == "eq" {
        if rest.is_empty() {
            return Err("error calling eq: missing argument for comparison".into());
        }
        for other in rest {
            let equal = match (first, other) {
                (Val::Str(a), Val::Str(b)) => a == b,
                (Val::Int(a), Val::Int(b)) => a == b,
                (Val::Float(a), Val::Float(b)) => a == b,
                (Val::Bool(a), Val::Bool(b)) => a == b,
                _ => return Err(incompatible()),
            };
            if equal {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if rest.len() != 1 {
        return Err(format!(
            "wrong number of args for {name}: want 2 got {}",
            args.len()
        ));
    }
    let ordering = match (first, &rest[0]) {
        (Val::Str(a), Val::Str(b)) => a.partial_cmp(b),
        (Val::Int(a), Val::Int(b)) => a.partial_cmp(b),
        (Val::Float(a), Val::Float(b)) => a.partial_cmp(b),
        (Val::Bool(a), Val::Bool(b)) if name == "ne" => Some(a.cmp(b)),
        _ => return Err(incompatible()),
    };
    Ok(match name {
        "ne" => ordering != Some(std::cmp::Ordering::Equal),
        "lt" => ordering == Some(std::cmp::Ordering::Less),
        "le" => matches!(
            ordering,
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        ),
        "gt" => ordering == Some(std::cmp::Ordering::Greater),
        _ => matches!(
            ordering,
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        ),
    })
}

fn humanize(mut v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_g(v, 4))
}

fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_g(v, 4))
}

fn humanize_duration(mut v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    if v == 0.0 {
        return format!("{}s", format_g(v, 4));
    }
    if v.abs() >= 1.0 {
        let mut sign = "";
        if v < 0.0 {
            sign = "-";
            v = -v;
        }
        let duration = v as i64;
        let seconds = duration % 60;
        let minutes = (duration / 60) % 60;
        let hours = (duration / 60 / 60) % 24;
        let days = duration / 60 / 60 / 24;
        if days != 0 {
            return format!("{sign}{days}d {hours}h {minutes}m {seconds}s");
        }
        if hours != 0 {
            return format!("{sign}{hours}h {minutes}m {seconds}s");
        }
        if minutes != 0 {
            return format!("{sign}{minutes}m {seconds}s");
        }
        return format!("{sign}{}s", format_g(v, 4));
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_g(v, 4))
}

/// Go's `fmt.Sprint(time.Time)` of a Unix time in seconds, in UTC.
fn go_time(v: f64) -> Option<String> {
    let nanos = v * 1e9;
    if !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&nanos) {
        return None;
    }
    // Prometheus goes through model.Time: milliseconds, truncated.
    let nanos = (nanos as i64) / 1_000_000 * 1_000_000;
    let time = chrono::DateTime::from_timestamp(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000) as u32,
    )?;
    let mut out = time.format("%Y-%m-%d %H:%M:%S").to_string();
    let fraction = nanos.rem_euclid(1_000_000_000);
    if fraction != 0 {
        let digits = format!("{fraction:09}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    out.push_str(" +0000 UTC");
    Some(out)
}

/// Go's (deprecated) `strings.Title`.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_separates = true;
    for c in s.chars() {
        if previous_separates {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        previous_separates = if c.is_ascii() {
            !(c.is_ascii_alphanumeric() || c == '_')
        } else {
            !c.is_alphanumeric() && c.is_whitespace()
        };
    }
    out
}

fn strip_port(host_port: &str) -> String {
    if let Some(rest) = host_port.strip_prefix('[') {
        if let Some((host, port)) = rest.split_once("]:") {
            if !port.contains(':') {
                return host.to_string();
            }
        }
        return host_port.to_string();
    }
    match host_port.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') => host.to_string(),
        _ => host_port.to_string(),
    }
}

fn url_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme
        .find('/')
        .map_or(String::new(), |i| after_scheme[i..].to_string())
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

/// Go's `fmt.Sprintf` for the verbs templates use.
pub(crate) fn sprintf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut next = 0usize;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut zero, mut plus, mut space) = (false, false, false, false);
        while let Some(&f) = chars.peek() {
            match f {
                '-' => minus = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut p = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                p.push(d);
                chars.next();
            }
            precision = Some(p.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        let bad = || format!("%!{verb}({}={})", arg.type_name(), arg.print());
        let mut text = match (verb, arg) {
            ('v', _) => arg.print(),
            ('s', Val::Str(s)) => precision.map_or(s.clone(), |p| s.chars().take(p).collect()),
            ('s', Val::Float(_) | Val::Int(_) | Val::Bool(_)) => bad(),
            ('s', _) => arg.print(),
            ('q', Val::Str(s)) => format!("{s:?}"),
            ('d', Val::Int(i)) => i.to_string(),
            ('x', Val::Int(i)) => format!("{i:x}"),
            ('X', Val::Int(i)) => format!("{i:X}"),
            ('x', Val::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('f' | 'F', Val::Float(f)) => format_f(*f, precision.unwrap_or(6)),
            ('e', Val::Float(f)) => format_e(*f, precision.unwrap_or(6)),
            ('g', Val::Float(f)) => format_g(*f, precision.map_or(-1, |p| p as i32)),
            ('t', Val::Bool(b)) => b.to_string(),
            _ => bad(),
        };
        let numeric = matches!(arg, Val::Int(_) | Val::Float(_));
        if numeric && !text.starts_with('-') && !text.starts_with('%') {
            if plus {
                text.insert(0, '+');
            } else if space {
                text.insert(0, ' ');
            }
        }
        let width: usize = width.parse().unwrap_or(0);
        let length = text.chars().count();
        if length < width {
            let pad = width - length;
            if minus {
                text.push_str(&" ".repeat(pad));
            } else if zero && numeric {
                let sign_len = usize::from(text.starts_with(['-', '+', ' ']));
                text.insert_str(sign_len, &"0".repeat(pad));
            } else {
                text.insert_str(0, &" ".repeat(pad));
            }
        }
        out.push_str(&text);
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), a.print()))
            .collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanizers_as_prometheus_writes_them() {
        assert_eq!(humanize(1234567.0), "1.235M");
        assert_eq!(humanize(0.0012), "1.2m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize_1024(1048576.0), "1Mi");
        assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
        assert_eq!(humanize_duration(90061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(0.0015), "1.5ms");
        assert_eq!(
            go_time(1.5).as_deref(),
            Some("1970-01-01 00:00:01.5 +0000 UTC")
        );
        assert_eq!(title("hello wORLD-foo_bar"), "Hello WORLD-Foo_bar");
        assert_eq!(strip_port("host:9090"), "host");
        assert_eq!(strip_port("[::1]:9090"), "::1");
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(sprintf("%.2f%%", &[Val::Float(12.3456)]), "12.35%");
        assert_eq!(
            sprintf(
                "%5.1f|%-4d|%05d",
                &[Val::Float(3.12159), Val::Int(7), Val::Int(-42)]
            ),
            "  3.1|7   |-0042"
        );
        assert_eq!(sprintf("%d", &[Val::Float(1.5)]), "%!d(float64=1.5)");
        assert_eq!(sprintf("%s %s", &[Val::Str("a".into())]), "a %!s(MISSING)");
        assert_eq!(sprintf("%v", &[Val::Float(1e6)]), "1e+06");
    }
}
