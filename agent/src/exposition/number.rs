//! Sample values and timestamps as exposition text writes them, parsed without allocating.
//!
//! Most values on the wire are short decimals (`0`, `1.5`, `3.4359738368e+10`). Those whose
//! digits fit in 53 bits and whose power of ten is at most 22 convert exactly with one
//! multiplication or division (Clinger's fast path); everything else (long mantissas, `NaN`,
//! `+Inf`, hex floats) goes to the standard library's correctly rounded parser. Either way the
//! result is the nearest `f64`, as Go's `strconv.ParseFloat` (Prometheus's parser) gives.

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
const MAX_EXACT: u64 = 1 << 53;

/// A sample value: a decimal or hexadecimal float, `NaN`, `+Inf`, `-Inf` (any case, as Go
/// accepts them). `None` for anything else.
pub fn parse_value(text: &[u8]) -> Option<f64> {
    match decimal_prefix(text) {
        Some((value, len)) if len == text.len() => Some(value),
        _ => slow(text),
    }
}

/// The short decimal `text` begins with and its length, when it converts exactly (see the
/// module documentation); `None` sends the caller to [`parse_value`] with the whole word.
#[inline]
pub fn decimal_prefix(text: &[u8]) -> Option<(f64, usize)> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let mut mantissa: u64 = 0;
    let mut significant = 0usize;
    let mut scale: i32 = 0;
    let mut i = 0;
    let mut seen_digit = false;
    // At most 19 digits count (checked below), and 19 digits cannot overflow a u64: the
    // arithmetic wraps only on values sent to the slow path anyway.
    while i < digits.len() && digits[i].is_ascii_digit() {
        mantissa = mantissa
            .wrapping_mul(10)
            .wrapping_add(u64::from(digits[i] - b'0'));
        significant += 1;
        seen_digit = true;
        i += 1;
    }
    if i < digits.len() && digits[i] == b'.' {
        i += 1;
        while i < digits.len() && digits[i].is_ascii_digit() {
            mantissa = mantissa
                .wrapping_mul(10)
                .wrapping_add(u64::from(digits[i] - b'0'));
            significant += 1;
            scale -= 1;
            seen_digit = true;
            i += 1;
        }
    }
    if !seen_digit || significant > 19 {
        return None;
    }
    if i < digits.len() && (digits[i] == b'e' || digits[i] == b'E') {
        i += 1;
        let (exp_negative, start) = match digits.get(i) {
            Some(b'-') => (true, i + 1),
            Some(b'+') => (false, i + 1),
            _ => (false, i),
        };
        let mut exp: i32 = 0;
        let mut j = start;
        while j < digits.len() && digits[j].is_ascii_digit() {
            exp = exp
                .checked_mul(10)?
                .checked_add(i32::from(digits[j] - b'0'))?;
            j += 1;
        }
        if j == start || exp > 1000 {
            return None;
        }
        scale += if exp_negative { -exp } else { exp };
        i = j;
    }
    if mantissa > MAX_EXACT {
        return None;
    }
    let m = mantissa as f64;
    let value = if scale == 0 {
        m
    } else if (1..=22).contains(&scale) {
        m * POW10[scale as usize]
    } else if (-22..0).contains(&scale) {
        m / POW10[(-scale) as usize]
    } else {
        return None;
    };
    Some((
        if negative { -value } else { value },
        text.len() - digits.len() + i,
    ))
}

fn slow(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    if let Ok(v) = s.parse::<f64>() {
        return Some(v);
    }
    hex_float(s)
}

/// Go's hexadecimal floats (`0x1p-2`, `-0X1.8p3`): rare, but Prometheus accepts them.
fn hex_float(s: &str) -> Option<f64> {
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let rest = rest
        .strip_prefix("0x")
        .or_else(|| rest.strip_prefix("0X"))?;
    let (mantissa, exp) = rest.split_once(['p', 'P'])?;
    let exp: i32 = exp.parse().ok()?;
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut value = 0f64;
    for c in int.chars() {
        value = value * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut unit = 1.0 / 16.0;
    for c in frac.chars() {
        value += f64::from(c.to_digit(16)?) * unit;
        unit /= 16.0;
    }
    let value = value * 2f64.powi(exp);
    Some(if negative { -value } else { value })
}

/// A timestamp of Prometheus text: integer milliseconds.
pub fn parse_millis(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
    }
    Some(if negative { -v } else { v })
}

/// A timestamp of OpenMetrics: seconds, possibly fractional, as milliseconds.
pub fn parse_seconds_as_millis(text: &[u8]) -> Option<i64> {
    let seconds = parse_value(text)?;
    if !seconds.is_finite() {
        return None;
    }
    let millis = (seconds * 1000.0).round();
    if millis.abs() > 9.2e18 {
        return None;
    }
    Some(millis as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_nearest_double_on_both_paths() {
        for text in [
            "0",
            "1",
            "-1",
            "+2",
            "1.5",
            "0.001",
            "3.4359738368e+10",
            "1e-05",
            "123456789012345678",
            "1.7976931348623157e308",
            "4.9e-324",
            "0.1",
            "2.5e22",
            "12345678901234567890123",
            "9007199254740993",
            "1.0000000000000002",
            "-0.0",
            ".5",
            "5.",
        ] {
            let want: f64 = text.parse().unwrap();
            let got = parse_value(text.as_bytes()).unwrap();
            assert_eq!(got.to_bits(), want.to_bits(), "{text}");
        }
    }

    #[test]
    fn special_values_and_hex_floats_parse_as_go_does() {
        assert!(parse_value(b"NaN").unwrap().is_nan());
        assert_eq!(parse_value(b"+Inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_value(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_value(b"0x1p-2"), Some(0.25));
        assert_eq!(parse_value(b"-0X1.8p3"), Some(-12.0));
        for bad in [
            "", "-", "1e", "e5", "1.2.3", "0x", "abc", "1 2", "1e+", "--1",
        ] {
            assert_eq!(parse_value(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn timestamps_in_both_formats() {
        assert_eq!(parse_millis(b"1700000000123"), Some(1_700_000_000_123));
        assert_eq!(parse_millis(b"-5"), Some(-5));
        assert_eq!(parse_millis(b"1.5"), None);
        assert_eq!(parse_millis(b"99999999999999999999"), None);
        assert_eq!(
            parse_seconds_as_millis(b"1700000000.123"),
            Some(1_700_000_000_123)
        );
        assert_eq!(parse_seconds_as_millis(b"NaN"), None);
    }

    proptest::proptest! {
        #[test]
        fn any_double_printed_either_way_parses_back(bits in proptest::num::u64::ANY) {
            let v = f64::from_bits(bits);
            proptest::prop_assume!(v.is_finite());
            for text in [format!("{v}"), format!("{v:e}")] {
                proptest::prop_assert_eq!(parse_value(text.as_bytes()).map(f64::to_bits), Some(v.to_bits()));
            }
        }
    }
}
