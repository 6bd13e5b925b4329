//! Prometheus's durations (`model.Duration`): what rule files, unit-test files and PromQL
//! test files write for intervals and times.

/// Prometheus's units, largest first, in milliseconds.
const UNITS: [(&str, i64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// Prometheus's duration (`model.ParseDuration`): `0`, or units from `y` down to `ms` in
/// order, e.g. `1h30m`. Returns milliseconds.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total: i64 = 0;
    let mut last_unit = 0usize;
    if rest.is_empty() {
        return Err("empty duration string".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("not a valid duration string: {text:?}"));
        }
        let n: i64 = rest[..digits]
            .parse()
            .map_err(|_| format!("not a valid duration string: {text:?}"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        let position = UNITS
            .iter()
            .position(|(u, _)| *u == unit)
            .ok_or_else(|| format!("not a valid duration string: {text:?}"))?;
        if position < last_unit || (total > 0 && position == last_unit) {
            return Err(format!("not a valid duration string: {text:?}"));
        }
        last_unit = position;
        total = n
            .checked_mul(UNITS[position].1)
            .and_then(|v| total.checked_add(v))
            .ok_or("duration out of range")?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Renders milliseconds as Prometheus does (`1h30m`, `0s`): the largest units first.
pub fn format_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = ms;
    if rest < 0 {
        out.push('-');
        rest = -rest;
    }
    for (unit, size) in UNITS {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_prometheus_units() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("100ms"), Ok(100));
        assert!(parse_duration("30m1h").is_err());
        assert!(parse_duration("5").is_err());
    }

    #[test]
    fn formatted_as_prometheus_prints_them() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(5_400_000), "1h30m");
        assert_eq!(format_duration(90_500), "1m30s500ms");
    }
}
