//! Kubernetes resource quantities (`500m`, `2`, `128Mi`, `1G`, `1e3`) as numbers: CPU in cores,
//! memory in bytes.

/// The value of a quantity, `None` when it is not one.
pub fn parse(q: &str) -> Option<f64> {
    let q = q.trim();
    const SUFFIXES: [(&str, f64); 14] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = q.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    let (number, factor) = match q.strip_suffix('E') {
        Some(n) if !n.contains(['e', 'E']) => (n, 1e18),
        _ => (q, 1.0),
    };
    number
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn cpu_and_memory_quantities() {
        assert_eq!(parse("500m"), Some(0.5));
        assert_eq!(parse("2"), Some(2.0));
        assert_eq!(parse("1.5"), Some(1.5));
        assert_eq!(parse("128Mi"), Some(134_217_728.0));
        assert_eq!(parse("1G"), Some(1e9));
        assert_eq!(parse("1e3"), Some(1000.0));
        assert_eq!(parse("250u"), Some(0.00025));
        assert_eq!(parse("lots"), None);
    }
}
