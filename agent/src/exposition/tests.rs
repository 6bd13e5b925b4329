use super::*;

fn lines(body: &str, format: Format) -> Result<Vec<Line<'_>>, ParseError> {
    let mut lexer = Lexer::new(body.as_bytes(), format);
    let mut out = Vec::new();
    while let Some(line) = lexer.next_line()? {
        out.push(line);
    }
    Ok(out)
}

#[test]
fn text_lines_come_out_as_written_with_values_and_timestamps() {
    let body = "# HELP http_requests_total The total. \\n done\n# TYPE http_requests_total counter\nhttp_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\n  # a comment\nhttp_requests_total{method=\"a}b\\\"c\",code=\"400\"}    3\nmetric_without_labels 12.47\nweird{} +Inf\n";
    let got = lines(body, Format::Text).unwrap();
    assert_eq!(got.len(), 6);
    assert_eq!(
        got[0],
        Line::Help {
            family: b"http_requests_total",
            text: b"The total. \\n done"
        }
    );
    assert_eq!(
        got[1],
        Line::Type {
            family: b"http_requests_total",
            kind: MetricType::Counter
        }
    );
    let Line::Sample(s) = &got[2] else { panic!() };
    assert_eq!(
        s.series,
        b"http_requests_total{method=\"post\",code=\"200\"}"
    );
    assert_eq!(s.labels, b"method=\"post\",code=\"200\"");
    assert_eq!((s.value, s.timestamp_ms), (1027.0, Some(1_395_066_363_000)));
    let Line::Sample(s) = &got[3] else { panic!() };
    assert_eq!(s.labels, b"method=\"a}b\\\"c\",code=\"400\"");
    assert_eq!((s.value, s.timestamp_ms), (3.0, None));
    let Line::Sample(s) = &got[4] else { panic!() };
    assert_eq!(
        (s.name, s.labels, s.value),
        (&b"metric_without_labels"[..], &b""[..], 12.47)
    );
    let Line::Sample(s) = &got[5] else { panic!() };
    assert_eq!((s.series, s.value), (&b"weird{}"[..], f64::INFINITY));
}

#[test]
fn openmetrics_needs_eof_and_reads_exemplars_units_and_second_timestamps() {
    let body = "# TYPE foo histogram\n# UNIT foo seconds\nfoo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\"} 0.067 1520879607.789\nfoo_count 17 1520879607.789\n# EOF\n";
    let got = lines(body, Format::OpenMetrics).unwrap();
    assert_eq!(
        got[1],
        Line::Unit {
            family: b"foo",
            unit: b"seconds"
        }
    );
    let Line::Sample(s) = &got[2] else { panic!() };
    assert_eq!(
        s.exemplar,
        Some(&b"{trace_id=\"KOO5S4vxi0o\"} 0.067 1520879607.789"[..])
    );
    assert_eq!(s.timestamp_ms, None);
    let Line::Sample(s) = &got[3] else { panic!() };
    assert_eq!(s.timestamp_ms, Some(1_520_879_607_789));
    assert_eq!(got[4], Line::Eof);

    let no_eof = "# TYPE foo gauge\nfoo 1\n";
    assert_eq!(
        lines(no_eof, Format::OpenMetrics).unwrap_err().reason,
        "the body does not end with # EOF"
    );
    let after_eof = "foo 1\n# EOF\nfoo 2\n";
    assert_eq!(lines(after_eof, Format::OpenMetrics).unwrap_err().line, 3);
    assert!(lines("# random comment\n# EOF\n", Format::OpenMetrics).is_err());
    assert!(lines("# TYPE foo untyped\n# EOF\n", Format::OpenMetrics).is_err());
}

#[test]
fn malformed_lines_name_their_line_and_reason() {
    let cases = [
        (
            "ok 1\nbad{a=\"1\" 2\n",
            2,
            "a label set without its closing brace",
        ),
        ("ok 1\nbad abc\n", 2, "a value that is not a number"),
        ("bad\n", 1, "no space before the value"),
        ("bad 1 2 3\n", 1, "text after the timestamp"),
        ("bad 1 1.5\n", 1, "a timestamp that is not a number"),
        ("# TYPE x sometype\n", 1, "an unknown metric type"),
        ("# TYPE 0x counter\n", 1, "an invalid metric name"),
        ("{a=\"1\"} 1\n", 1, "a sample without a metric name"),
    ];
    for (body, line, reason) in cases {
        assert_eq!(
            lines(body, Format::Text).unwrap_err(),
            ParseError { line, reason },
            "{body:?}"
        );
    }
}

#[test]
fn sample_roles_follow_the_family_type() {
    use MetricType as T;
    use SampleRole as R;
    let t = Format::Text;
    let om = Format::OpenMetrics;
    assert_eq!(
        T::Histogram.role_of(b"rpc", b"rpc_bucket", t),
        Some(R::Bucket)
    );
    assert_eq!(T::Histogram.role_of(b"rpc", b"rpc", t), None);
    assert_eq!(T::Summary.role_of(b"rpc", b"rpc", t), Some(R::Quantile));
    assert_eq!(T::Summary.role_of(b"rpc", b"rpc_count", t), Some(R::Count));
    assert_eq!(
        T::Counter.role_of(b"c_total", b"c_total", t),
        Some(R::Value)
    );
    assert_eq!(T::Counter.role_of(b"c", b"c_total", om), Some(R::Value));
    assert_eq!(T::Counter.role_of(b"c", b"c_created", om), Some(R::Created));
    assert_eq!(T::Counter.role_of(b"c", b"c", om), None);
    assert_eq!(T::Info.role_of(b"build", b"build_info", om), Some(R::Value));
    assert_eq!(T::Gauge.role_of(b"g", b"g_other", t), None);
    assert_eq!(
        Format::from_content_type(Some(
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type(Some("text/plain; version=0.0.4")),
        Format::Text
    );
    assert_eq!(Format::from_content_type(None), Format::Text);
}

#[test]
fn exemplars_parse_with_labels_value_and_optional_seconds() {
    let e = parse_exemplar(
        b"{trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\",x=\"y\"} 0.067 1520879607.789",
    )
    .unwrap();
    assert_eq!(e.labels.len(), 2);
    assert_eq!((e.value, e.timestamp_ms), (0.067, Some(1_520_879_607_789)));
    assert_eq!(parse_exemplar(b"{} 1").unwrap().timestamp_ms, None);
    for bad in [
        &b"trace_id=\"a\" 1"[..],
        b"{a=\"b\"}",
        b"{a=\"b\"} x",
        b"{a=b} 1",
        b"{a=\"b\"} 1 2 3",
    ] {
        assert_eq!(
            parse_exemplar(bad),
            None,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}
