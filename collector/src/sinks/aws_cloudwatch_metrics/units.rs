//! OpenTelemetry units (UCUM, as OTLP carries them) to CloudWatch's standard units. Units that
//! CloudWatch has no name for but that are a fixed multiple of one it has (`ns`, `KiBy`) are
//! scaled; annotations like `{requests}` are counts. Without a unit (Prometheus metrics), the
//! Prometheus naming conventions decide: `_seconds`, `_bytes`, `_total`. Anything else is `None`.

/// A CloudWatch unit and the factor that converts values into it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Unit {
    pub name: &'static str,
    pub scale: f64,
}

const fn unit(name: &'static str) -> Unit {
    Unit { name, scale: 1.0 }
}

const fn scaled(name: &'static str, scale: f64) -> Unit {
    Unit { name, scale }
}

pub const NONE: Unit = unit("None");

fn plain(ucum: &str) -> Option<Unit> {
    Some(match ucum {
        "s" => unit("Seconds"),
        "ms" => unit("Milliseconds"),
        "us" => unit("Microseconds"),
        "ns" => scaled("Microseconds", 1e-3),
        "min" => scaled("Seconds", 60.0),
        "h" => scaled("Seconds", 3600.0),
        "By" => unit("Bytes"),
        "kBy" => unit("Kilobytes"),
        "MBy" => unit("Megabytes"),
        "GBy" => unit("Gigabytes"),
        "TBy" => unit("Terabytes"),
        "KiBy" => scaled("Bytes", 1024.0),
        "MiBy" => scaled("Bytes", 1024.0 * 1024.0),
        "GiBy" => scaled("Bytes", 1024.0 * 1024.0 * 1024.0),
        "bit" => unit("Bits"),
        "kbit" => unit("Kilobits"),
        "Mbit" => unit("Megabits"),
        "Gbit" => unit("Gigabits"),
        "Tbit" => unit("Terabits"),
        "%" => unit("Percent"),
        "1" => NONE,
        _ if ucum.starts_with('{') && ucum.ends_with('}') => unit("Count"),
        _ => return None,
    })
}

fn per_second(ucum: &str) -> Option<Unit> {
    Some(match ucum {
        "By" => unit("Bytes/Second"),
        "kBy" => unit("Kilobytes/Second"),
        "MBy" => unit("Megabytes/Second"),
        "GBy" => unit("Gigabytes/Second"),
        "TBy" => unit("Terabytes/Second"),
        "KiBy" => scaled("Bytes/Second", 1024.0),
        "MiBy" => scaled("Bytes/Second", 1024.0 * 1024.0),
        "bit" => unit("Bits/Second"),
        "kbit" => unit("Kilobits/Second"),
        "Mbit" => unit("Megabits/Second"),
        "Gbit" => unit("Gigabits/Second"),
        "Tbit" => unit("Terabits/Second"),
        "1" => unit("Count/Second"),
        _ if ucum.starts_with('{') && ucum.ends_with('}') => unit("Count/Second"),
        _ => return None,
    })
}

fn from_name(metric: &str) -> Unit {
    if metric.ends_with("_seconds") || metric.ends_with("_seconds_total") {
        unit("Seconds")
    } else if metric.ends_with("_bytes") || metric.ends_with("_bytes_total") {
        unit("Bytes")
    } else if metric.ends_with("_total") || metric.ends_with("_count") {
        unit("Count")
    } else if metric.ends_with("_percent") {
        unit("Percent")
    } else {
        NONE
    }
}

/// The CloudWatch unit of a metric with OTLP unit `ucum` and name `metric`.
pub fn map(ucum: &str, metric: &str) -> Unit {
    if ucum.is_empty() {
        return from_name(metric);
    }
    let mapped = match ucum.strip_suffix("/s") {
        Some(base) => per_second(base),
        None => plain(ucum),
    };
    mapped.unwrap_or(NONE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otel_units_and_prometheus_names_map_to_cloudwatch_units() {
        assert_eq!(map("s", "x"), unit("Seconds"));
        assert_eq!(map("ns", "x"), scaled("Microseconds", 1e-3));
        assert_eq!(map("By/s", "x"), unit("Bytes/Second"));
        assert_eq!(map("KiBy", "x"), scaled("Bytes", 1024.0));
        assert_eq!(map("{request}", "x"), unit("Count"));
        assert_eq!(map("{packet}/s", "x"), unit("Count/Second"));
        assert_eq!(map("%", "x"), unit("Percent"));
        assert_eq!(map("furlongs", "x"), NONE);
        assert_eq!(map("", "http_request_duration_seconds"), unit("Seconds"));
        assert_eq!(map("", "container_memory_working_set_bytes"), unit("Bytes"));
        assert_eq!(map("", "http_requests_total"), unit("Count"));
        assert_eq!(map("", "up"), NONE);
    }
}
