//! Go's `strconv`/`fmt` formatting of floats, byte for byte, wherever Sextant must print a
//! number as Prometheus does: `%v` (shortest `%g`) for `le` and `quantile` labels and alert
//! templates, `%.4g` for `humanize`, `%e` and `%f` for `printf`. promtool compares alert
//! annotations exactly, so "close" is wrong.

/// Go's `strconv.FormatFloat(v, 'g', prec, 64)`; `prec < 0` is the shortest representation
/// that round-trips (what `%v` prints).
pub fn format_g(v: f64, prec: i32) -> String {
    if let Some(special) = special(v) {
        return special;
    }
    let (negative, digits, exp) = decimal_digits(v, prec);
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let shortest = prec < 0;
    let mut prec = if shortest { nd } else { prec.max(1) };
    let mut eprec = prec;
    if eprec > nd && nd >= dp {
        eprec = nd;
    }
    if shortest {
        eprec = 6;
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        if prec > nd {
            prec = nd;
        }
        push_e(&mut out, &digits, exp, prec - 1);
    } else {
        if prec > dp {
            prec = nd;
        }
        push_f(&mut out, &digits, dp, (prec - dp).max(0));
    }
    out
}

/// Go's `%e` with `prec` digits after the point.
pub fn format_e(v: f64, prec: usize) -> String {
    if let Some(special) = special(v) {
        return special;
    }
    let (negative, digits, exp) = decimal_digits(v, prec as i32 + 1);
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    push_e(&mut out, &digits, exp, prec as i32);
    out
}

/// Go's `%f` with `prec` digits after the point.
pub fn format_f(v: f64, prec: usize) -> String {
    if let Some(special) = special(v) {
        return special;
    }
    format!("{v:.prec$}")
}

fn special(v: f64) -> Option<String> {
    if v.is_nan() {
        Some("NaN".into())
    } else if v == f64::INFINITY {
        Some("+Inf".into())
    } else if v == f64::NEG_INFINITY {
        Some("-Inf".into())
    } else {
        None
    }
}

/// The decimal digits of |v| (no trailing zeros, at least one) and its decimal exponent,
/// rounded to `prec` significant digits, or the shortest round-trip digits for `prec < 0`.
fn decimal_digits(v: f64, prec: i32) -> (bool, Vec<u8>, i32) {
    let negative = v.is_sign_negative() && v != 0.0;
    let text = if prec < 0 {
        format!("{:e}", v.abs())
    } else {
        format!("{:.*e}", (prec.max(1) - 1) as usize, v.abs())
    };
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits == [b'0'] {
        return (negative, digits, 0);
    }
    (negative, digits, exp)
}

fn push_e(out: &mut String, digits: &[u8], exp: i32, prec: i32) {
    out.push(digits[0] as char);
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as usize {
            out.push(digits.get(i).map_or('0', |&d| d as char));
        }
    }
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let e = exp.abs();
    if e < 10 {
        out.push('0');
    }
    out.push_str(&e.to_string());
}

fn push_f(out: &mut String, digits: &[u8], dp: i32, decimals: i32) {
    if dp > 0 {
        for i in 0..dp as usize {
            out.push(digits.get(i).map_or('0', |&d| d as char));
        }
    } else {
        out.push('0');
    }
    if decimals > 0 {
        out.push('.');
        for i in 0..decimals {
            let index = dp + i;
            out.push(if index < 0 {
                '0'
            } else {
                digits.get(index as usize).map_or('0', |&d| d as char)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_g_as_go_prints_floats() {
        assert_eq!(format_g(1.0, -1), "1");
        assert_eq!(format_g(0.1, -1), "0.1");
        assert_eq!(format_g(123456.0, -1), "123456");
        assert_eq!(format_g(1e6, -1), "1e+06");
        assert_eq!(format_g(1234567.0, -1), "1.234567e+06");
        assert_eq!(format_g(0.0001, -1), "0.0001");
        assert_eq!(format_g(0.00001, -1), "1e-05");
        assert_eq!(format_g(-2.5, -1), "-2.5");
        assert_eq!(format_g(0.0, -1), "0");
        assert_eq!(format_g(f64::INFINITY, -1), "+Inf");
    }

    #[test]
    fn four_significant_digits_as_humanize_prints_them() {
        assert_eq!(format_g(1.5, 4), "1.5");
        assert_eq!(format_g(1200.0, 4), "1200");
        assert_eq!(format_g(12345.0, 4), "1.234e+04");
        assert_eq!(format_g(100000.0, 4), "1e+05");
        assert_eq!(format_g(12.0, 4), "12");
        assert_eq!(format_g(0.5, 4), "0.5");
        assert_eq!(format_g(0.000012345, 4), "1.234e-05");
        assert_eq!(format_g(999.99, 4), "1000");
        assert_eq!(format_g(0.0, 4), "0");
    }

    #[test]
    fn e_and_f() {
        assert_eq!(format_e(1234.5, 2), "1.23e+03");
        assert_eq!(format_f(2.0 / 3.0, 2), "0.67");
    }
}
