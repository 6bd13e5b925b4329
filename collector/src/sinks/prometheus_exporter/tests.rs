//! The store's bounds (expiry, the series limit, reused slots) and the page's formats.

use std::sync::Arc;

use sextant_pipeline::flow::event::prometheus::SCRAPE_SCOPE;
use sextant_pipeline::flow::event::{
    KeyValue, Metric, MetricData, Number, NumberPoint, Origin, Resource, FLAG_NO_RECORDED_VALUE,
};

use super::render::{render, Format};
use super::store::Store;

fn gauge(name: &str, scope: &str, points: &[(&str, f64, u32)]) -> Metric {
    let mut origin = Origin {
        resource: Resource {
            attributes: vec![KeyValue::new("service.name", "api")],
            ..Default::default()
        },
        ..Default::default()
    };
    origin.scope.name = scope.into();
    Metric {
        origin: Arc::new(origin),
        name: name.into(),
        description: "Help with \\ and\nnewline.".into(),
        unit: String::new(),
        metadata: vec![],
        data: Some(MetricData::Gauge(
            points
                .iter()
                .map(|&(pod, v, flags)| NumberPoint {
                    attributes: vec![KeyValue::new("pod", pod)],
                    time_unix_nano: 1,
                    value: Some(Number::Double(v)),
                    flags,
                    ..Default::default()
                })
                .collect(),
        )),
    }
}

fn page(store: &mut Store, format: Format) -> String {
    store.sweep_members();
    let mut out = Vec::new();
    render(store, format, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn the_page_escapes_label_values_and_help_and_openmetrics_ends_with_eof() {
    let mut store = Store::new(100);
    store.ingest(&[gauge("temp", SCRAPE_SCOPE, &[("a\"b\\c\nd", 1.5, 0)])], 1);
    let text = page(&mut store, Format::Text);
    assert_eq!(
        text,
        "# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{job=\"api\"} 1\n\
         # HELP temp Help with \\\\ and\\nnewline.\n# TYPE temp gauge\n\
         temp{job=\"api\",pod=\"a\\\"b\\\\c\\nd\"} 1.5\n"
    );
    let open = page(&mut store, Format::OpenMetrics);
    assert!(open.ends_with("# EOF\n"), "{open}");
}

#[test]
fn openmetrics_names_a_counters_family_without_total_and_one_lacking_it_unknown() {
    let mut store = Store::new(100);
    let counter = |name: &str| {
        let mut m = gauge(name, SCRAPE_SCOPE, &[("a", 3.0, 0)]);
        if let Some(MetricData::Gauge(points)) = m.data.take() {
            m.data = Some(MetricData::Sum {
                points,
                temporality: sextant_pipeline::flow::event::Temporality::Cumulative,
                monotonic: true,
            });
        }
        m
    };
    store.ingest(&[counter("requests_total"), counter("legacy_hits")], 1);
    let open = page(&mut store, Format::OpenMetrics);
    assert!(
        open.contains("# TYPE requests counter\nrequests_total{"),
        "{open}"
    );
    assert!(
        open.contains("# TYPE legacy_hits unknown\nlegacy_hits{"),
        "{open}"
    );
    let text = page(&mut store, Format::Text);
    assert!(text.contains("# TYPE requests_total counter\n"), "{text}");
    assert!(text.contains("# TYPE legacy_hits counter\n"), "{text}");
}

#[test]
fn stale_markers_expiry_and_the_series_limit_bound_what_is_exposed() {
    let mut store = Store::new(10);
    let pods: Vec<String> = (0..9).map(|i| format!("p{i}")).collect();
    let points: Vec<(&str, f64, u32)> = pods.iter().map(|p| (p.as_str(), 1.0, 0)).collect();
    // 9 series and target_info.
    store.ingest(&[gauge("up", SCRAPE_SCOPE, &points)], 1);
    assert_eq!(store.series_count(), 10);
    // A stale marker removes its series; the slot is reused only after a sweep, and a new
    // series is listed once.
    store.ingest(
        &[gauge(
            "up",
            SCRAPE_SCOPE,
            &[("p0", 0.0, FLAG_NO_RECORDED_VALUE)],
        )],
        2,
    );
    store.ingest(&[gauge("up", SCRAPE_SCOPE, &[("p9", 1.0, 0)])], 3);
    let text = page(&mut store, Format::Text);
    assert!(!text.contains("pod=\"p0\""), "{text}");
    assert_eq!(text.matches("pod=\"p9\"").count(), 1, "{text}");
    assert_eq!(text.matches("\nup{").count(), 9, "{text}");

    // Over the limit: the tenth updated longest ago go (two of those last updated at 1), and
    // what was just written stays.
    let evicted = store.ingest(&[gauge("up", SCRAPE_SCOPE, &[("p10", 1.0, 0)])], 4);
    assert_eq!(evicted.evicted, 2);
    assert_eq!(store.series_count(), 9);
    let text = page(&mut store, Format::Text);
    assert_eq!(text.matches("\nup{").count(), 8, "{text}");
    assert!(
        text.contains("pod=\"p9\"") && text.contains("pod=\"p10\""),
        "{text}"
    );

    // Not updated since 5: expired.
    store.ingest(&[gauge("up", SCRAPE_SCOPE, &[("p99", 2.0, 0)])], 5);
    assert_eq!(store.expire(5), 8);
    let text = page(&mut store, Format::Text);
    assert_eq!(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        vec![
            "target_info{job=\"api\"} 1",
            "up{job=\"api\",pod=\"p99\"} 2"
        ],
    );
}

#[test]
fn values_read_back_exactly() {
    for v in [0.1, 1e-7, 123456789.125, 1e300, -2.5, 42.0, 1e15, -0.0] {
        let mut out = Vec::new();
        super::render::push_value(&mut out, v);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.parse::<f64>().unwrap(), v, "{text}");
    }
}
