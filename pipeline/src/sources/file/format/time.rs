//! RFC 3339 timestamps as container runtimes write them (`2024-05-01T12:34:56.123456789Z`, or
//! with a `+hh:mm` offset, fraction optional), parsed by hand: this runs once per log line.

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn digits(b: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

/// Nanoseconds since the Unix epoch, or `None` if `s` is not such a timestamp (or before 1970).
pub fn parse_rfc3339_nanos(s: &[u8]) -> Option<u64> {
    if s.len() < 20
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(&s[0..4])?, digits(&s[5..7])?, digits(&s[8..10])?);
    let (hour, minute, second) = (
        digits(&s[11..13])?,
        digits(&s[14..16])?,
        digits(&s[17..19])?,
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(s[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match s.get(i) {
        Some(b'Z' | b'z') if i + 1 == s.len() => 0,
        Some(sign @ (b'+' | b'-')) if s.len() == i + 6 && s[i + 3] == b':' => {
            let secs = digits(&s[i + 1..i + 3])? * 3600 + digits(&s[i + 4..i + 6])? * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_runtimes_write() {
        assert_eq!(parse_rfc3339_nanos(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_nanos(b"2016-10-06T00:17:09.669794202Z"),
            Some(1_475_713_029_669_794_202)
        );
        assert_eq!(
            parse_rfc3339_nanos(b"2016-10-06T00:17:09.5Z"),
            Some(1_475_713_029_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_nanos(b"2016-10-06T02:17:09+02:00"),
            Some(1_475_713_029_000_000_000)
        );
        assert_eq!(
            parse_rfc3339_nanos(b"2024-02-29T23:59:59.999999999Z"),
            Some(1_709_251_199_999_999_999)
        );
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            &b"2016-10-06 garbage"[..],
            b"2016-13-06T00:00:00Z",
            b"2016-10-06T00:00:00",
            b"2016-10-06T00:00:00.Z",
            b"x",
        ] {
            assert_eq!(
                parse_rfc3339_nanos(bad),
                None,
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
