use super::*;
use crate::sources::prometheus_scrape::relabel::RelabelConfig;
use sextant_pipeline::flow::event::{attributes_to_json, find_attribute};

const T0: i64 = 1_700_000_000_000;

fn target() -> Labels {
    vec![
        (Text::from("job"), Text::from("node")),
        (Text::from("instance"), Text::from("10.0.0.1:9100")),
        (Text::from("zone"), Text::from("a")),
    ]
}

fn cache(settings: SeriesSettings) -> TargetSeries {
    TargetSeries::new(settings, target())
}

fn scrape(
    c: &mut TargetSeries,
    body: &str,
    now: i64,
) -> (Result<Ingested, ScrapeFailure>, Vec<Metric>, Dropped) {
    let r = c.ingest(body.as_bytes(), Format::Text, now);
    let mut dropped = Dropped::default();
    let origin = Arc::new(Origin::default());
    let out = c.emit(&origin, r.is_err(), now, &mut dropped);
    (r, out, dropped)
}

fn find<'a>(metrics: &'a [Metric], name: &str) -> &'a Metric {
    metrics.iter().find(|m| m.name == name).unwrap_or_else(|| {
        panic!(
            "no {name} in {:?}",
            metrics.iter().map(|m| &m.name).collect::<Vec<_>>()
        )
    })
}

fn numbers(m: &Metric) -> &[NumberPoint] {
    match m.data.as_ref().unwrap() {
        MetricData::Gauge(p) | MetricData::Sum { points: p, .. } => p,
        other => panic!("{other:?}"),
    }
}

const BODY: &str = r#"# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu="0",mode="idle"} 100
node_cpu_seconds_total{cpu="0",mode="user"} 20.5
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.25
# TYPE rpc_seconds histogram
rpc_seconds_bucket{path="/a",le="0.1"} 2
rpc_seconds_bucket{path="/a",le="1"} 5
rpc_seconds_bucket{path="/a",le="+Inf"} 6
rpc_seconds_sum{path="/a"} 3.5
rpc_seconds_count{path="/a"} 6
# TYPE gc_seconds summary
gc_seconds{quantile="0.5"} 0.01
gc_seconds{quantile="0.99"} 0.2
gc_seconds_sum 1.5
gc_seconds_count 40
untyped_thing{job="other"} 7
"#;

#[test]
fn every_family_becomes_its_otlp_kind_with_target_labels_and_the_scrape_stats() {
    let mut c = cache(SeriesSettings::default());
    let (r, out, dropped) = scrape(&mut c, BODY, T0);
    assert_eq!(
        r.unwrap(),
        Ingested {
            scraped: 13,
            post_relabel: 13,
            added: 13,
            duplicates: 0
        }
    );
    assert_eq!(dropped, Dropped::default());
    let cpu = find(&out, "node_cpu_seconds_total");
    assert_eq!(cpu.description, "Seconds the CPUs spent in each mode.");
    assert!(matches!(
        cpu.data,
        Some(MetricData::Sum {
            monotonic: true,
            temporality: Temporality::Cumulative,
            ..
        })
    ));
    let points = numbers(cpu);
    assert_eq!(points.len(), 2);
    assert_eq!(
        attributes_to_json(&points[1].attributes),
        serde_json::json!({"cpu": "0", "mode": "user", "zone": "a"})
    );
    assert_eq!(points[1].value, Some(Number::Double(20.5)));
    assert_eq!(points[1].time_unix_nano, T0 as u64 * 1_000_000);
    assert_eq!(
        points[1].start_time_unix_nano, points[1].time_unix_nano,
        "first sight: a baseline"
    );
    assert!(matches!(
        find(&out, "node_load1").data,
        Some(MetricData::Gauge(_))
    ));

    let Some(MetricData::Histogram { points, .. }) = &find(&out, "rpc_seconds").data else {
        panic!()
    };
    assert_eq!(points.len(), 1);
    assert_eq!((points[0].count, points[0].sum), (6, Some(3.5)));
    assert_eq!(points[0].bucket_counts, vec![2, 3, 1]);
    assert_eq!(points[0].explicit_bounds, vec![0.1, 1.0]);
    assert_eq!(
        attributes_to_json(&points[0].attributes),
        serde_json::json!({"path": "/a", "zone": "a"})
    );

    let Some(MetricData::Summary(points)) = &find(&out, "gc_seconds").data else {
        panic!()
    };
    assert_eq!((points[0].count, points[0].sum), (40, 1.5));
    assert_eq!(points[0].quantile_values, vec![(0.5, 0.01), (0.99, 0.2)]);

    // An exposed `job` is renamed, not lost (honor_labels: false).
    let untyped = &numbers(find(&out, "untyped_thing"))[0];
    assert_eq!(
        find_attribute(&untyped.attributes, "exported_job").and_then(|v| v.as_str()),
        Some("other")
    );
    assert_eq!(
        find_attribute(&untyped.attributes, "job"),
        None,
        "the target's job is the resource's"
    );
}

#[test]
fn series_that_go_are_marked_stale_once_and_counters_keep_their_start_across_a_failed_scrape() {
    let mut c = cache(SeriesSettings::default());
    scrape(&mut c, BODY, T0).0.unwrap();
    let second = BODY
        .replace("node_load1 0.25\n", "")
        .replace("} 100\n", "} 130\n");
    let (r, out, _) = scrape(&mut c, &second, T0 + 15_000);
    assert_eq!(r.unwrap().added, 0);
    let load = numbers(find(&out, "node_load1"));
    assert_eq!(load.len(), 1);
    assert_eq!(
        (load[0].flags, load[0].value),
        (FLAG_NO_RECORDED_VALUE, None)
    );
    let idle = &numbers(find(&out, "node_cpu_seconds_total"))[0];
    assert_eq!(idle.value, Some(Number::Double(130.0)));
    assert_eq!(idle.start_time_unix_nano, T0 as u64 * 1_000_000);

    // A failed scrape: everything live goes stale, nothing of the body is kept.
    let (r, out, _) = scrape(&mut c, "node_cpu_seconds_total{cpu=\"0\" 1\n", T0 + 30_000);
    assert_eq!(
        r.unwrap_err().to_string(),
        "line 1: a label set without its closing brace"
    );
    let stale: usize = out
        .iter()
        .map(|m| m.data.as_ref().unwrap().point_count())
        .sum();
    assert_eq!(
        stale, 5,
        "every point of the last good scrape, once: {out:?}"
    );

    // Back: the counter's start is the same; then a reset moves it after the previous scrape.
    let (_, out, _) = scrape(&mut c, &second, T0 + 45_000);
    let idle = &numbers(find(&out, "node_cpu_seconds_total"))[0];
    assert_eq!(idle.start_time_unix_nano, T0 as u64 * 1_000_000);
    let reset = second.replace("} 130\n", "} 3\n");
    let (_, out, _) = scrape(&mut c, &reset, T0 + 60_000);
    let idle = &numbers(find(&out, "node_cpu_seconds_total"))[0];
    assert_eq!(idle.start_time_unix_nano, (T0 + 45_001) as u64 * 1_000_000);
    assert!(
        out.iter().all(|m| m.name != "node_load1"),
        "stale once, then forgotten"
    );
}

#[test]
fn limits_duplicates_and_bad_histograms_are_counted_or_fail_the_scrape() {
    let mut c = cache(SeriesSettings {
        sample_limit: 3,
        ..Default::default()
    });
    let (r, _, _) = scrape(&mut c, BODY, T0);
    assert_eq!(
        r.unwrap_err(),
        ScrapeFailure::SampleLimit {
            samples: 13,
            limit: 3
        }
    );

    let mut c = cache(SeriesSettings {
        label_value_length_limit: 3,
        ..Default::default()
    });
    let (r, _, _) = scrape(&mut c, "a{x=\"long\"} 1\n", T0);
    assert_eq!(
        r.unwrap_err().to_string(),
        "line 1: a label value longer than label_value_length_limit"
    );

    for bad in ["0bad 1\n", "ok 1\na-b{x=\"1\"} 1\n"] {
        let mut c = cache(SeriesSettings::default());
        let (r, _, _) = scrape(&mut c, bad, T0);
        assert!(
            r.unwrap_err()
                .to_string()
                .ends_with(": an invalid metric name"),
            "{bad:?}"
        );
    }

    let mut c = cache(SeriesSettings::default());
    let body = "a 1\na 2\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n# TYPE d histogram\nd_bucket{le=\"1\"} 3\nd_bucket{le=\"+Inf\"} 2\n";
    let (r, out, dropped) = scrape(&mut c, body, T0);
    assert_eq!(r.unwrap().duplicates, 1);
    assert_eq!(
        numbers(find(&out, "a"))[0].value,
        Some(Number::Double(1.0)),
        "the first sample wins"
    );
    assert_eq!(
        dropped,
        Dropped {
            histogram_without_inf: 1,
            histogram_not_cumulative: 1,
            gauge_histogram: 0
        }
    );
    assert!(out.iter().all(|m| m.name != "h" && m.name != "d"));
}

#[test]
fn metric_relabelling_sees_the_name_and_honor_labels_keeps_the_exposed_ones() {
    let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(
        "- {source_labels: [__name__], regex: 'node_cpu.*', action: drop}\n- {regex: path, action: labeldrop}\n",
    )
    .unwrap();
    let rules: Arc<[Rule]> = rules.iter().map(|r| r.compile().unwrap()).collect();
    let mut c = cache(SeriesSettings {
        metric_relabel: rules,
        honor_labels: true,
        ..Default::default()
    });
    let (r, out, _) = scrape(&mut c, BODY, T0);
    assert_eq!(r.unwrap().post_relabel, 11);
    assert!(out.iter().all(|m| m.name != "node_cpu_seconds_total"));
    let Some(MetricData::Histogram { points, .. }) = &find(&out, "rpc_seconds").data else {
        panic!()
    };
    assert_eq!(
        attributes_to_json(&points[0].attributes),
        serde_json::json!({"zone": "a"})
    );
    let untyped = &numbers(find(&out, "untyped_thing"))[0];
    assert_eq!(
        find_attribute(&untyped.attributes, "job").and_then(|v| v.as_str()),
        Some("other")
    );
    // The second scrape answers from the cache: the same output.
    let (r, again, _) = scrape(&mut c, BODY, T0 + 1000);
    assert_eq!(r.unwrap().added, 0);
    assert_eq!(again.len(), out.len());
}

#[test]
fn openmetrics_counters_take_their_start_from_created_and_keep_total_in_the_name() {
    let mut c = cache(SeriesSettings {
        honor_timestamps: true,
        ..Default::default()
    });
    let body = "# TYPE req counter\n# UNIT req requests\nreq_total 5 1700000001.5\nreq_created 1600000000\n# TYPE build info\nbuild_info{version=\"1\"} 1\n# EOF\n";
    c.ingest(body.as_bytes(), Format::OpenMetrics, T0).unwrap();
    let out = c.emit(
        &Arc::new(Origin::default()),
        false,
        T0,
        &mut Dropped::default(),
    );
    let req = find(&out, "req_total");
    assert_eq!(req.unit, "requests");
    let p = &numbers(req)[0];
    assert_eq!(p.start_time_unix_nano, 1_600_000_000_000_000_000);
    assert_eq!(p.time_unix_nano, 1_700_000_001_500_000_000);
    assert!(matches!(
        find(&out, "build_info").data,
        Some(MetricData::Gauge(_))
    ));
}

proptest::proptest! {
    /// Bodies of exposition-like characters (the fuzz target's job, always run): ingesting and
    /// emitting them never panics, and a scrape that fails leaves no point live.
    #[test]
    fn any_body_is_ingested_or_refused_without_panicking(
        lines in proptest::collection::vec(
            "[a-c_]{1,3}(\\{([a-c]{1,2}=\"[a-c\\\\\"} ]{0,4}\",?){0,3}\\})? [-+0-9.eInfNa]{1,5}( [0-9]{1,3})?|# (TYPE|HELP|UNIT) [a-c_]{1,3} (counter|gauge|histogram|summary|info|stateset|untyped|unknown)|# EOF|[a-c_]{1,3}_(bucket|sum|count|created|total)\\{le=\"[0-9.+Inf]{1,4}\"\\} [0-9]{1,2}|",
            0..60,
        ),
        om in proptest::bool::ANY,
        honor in proptest::bool::ANY,
    ) {
        let text = lines.join("\n") + "\n";
        let format = if om { Format::OpenMetrics } else { Format::Text };
        let mut c = cache(SeriesSettings { honor_labels: honor, honor_timestamps: honor, ..Default::default() });
        let origin = Arc::new(Origin::default());
        for (i, b) in [text.as_bytes(), text.as_bytes(), &text.as_bytes()[..text.len() / 2]].into_iter().enumerate() {
            let now = T0 + i as i64 * 1000;
            let failed = c.ingest(b, format, now).is_err();
            c.emit(&origin, failed, now, &mut Dropped::default());
            if failed {
                proptest::prop_assert!(c.points.iter().all(|p| !p.live()));
            }
        }
    }
}

#[test]
fn forgetting_most_series_compacts_their_texts_and_the_rest_still_hit_the_cache() {
    let mut c = cache(SeriesSettings::default());
    let body = |range: std::ops::Range<usize>, v: usize| -> String {
        range.map(|i| format!("m{{i=\"{i}\"}} {v}\n")).collect()
    };
    assert_eq!(scrape(&mut c, &body(0..100, 1), T0).0.unwrap().added, 100);
    let full = c.keys.len();
    // 80 of them go: their texts are dropped from the arena.
    let (r, out, _) = scrape(&mut c, &body(80..100, 2), T0 + 1000);
    assert_eq!(r.unwrap().added, 0);
    assert!(
        c.keys.len() < full / 2,
        "{} of {full} bytes kept",
        c.keys.len()
    );
    assert_eq!(c.len(), 20);
    let points = numbers(find(&out, "m"));
    assert_eq!(points.iter().filter(|p| p.flags == 0).count(), 20);
    assert_eq!(
        points
            .iter()
            .filter(|p| p.flags == FLAG_NO_RECORDED_VALUE)
            .count(),
        80
    );
    // The survivors answer from the cache with their own values; new ones are added.
    let (r, out, _) = scrape(&mut c, &(body(80..100, 3) + &body(200..210, 4)), T0 + 2000);
    assert_eq!(r.unwrap().added, 10);
    let p = numbers(find(&out, "m"));
    let value_of = |i: &str| {
        p.iter()
            .find(|p| find_attribute(&p.attributes, "i").and_then(|v| v.as_str()) == Some(i))
            .and_then(|p| p.value)
    };
    assert_eq!(value_of("85"), Some(Number::Double(3.0)));
    assert_eq!(value_of("205"), Some(Number::Double(4.0)));
    assert_eq!(value_of("5"), None);
}

#[test]
fn exemplars_become_otlp_exemplars_once_each() {
    let mut c = cache(SeriesSettings::default());
    let body = |trace: &str| {
        format!("# TYPE req counter\nreq_total 5 # {{trace_id=\"{trace}\",span_id=\"00f067aa0ba902b7\",user=\"u1\"}} 1 1700000000.5\n# TYPE lat histogram\nlat_bucket{{le=\"1\"}} 1 # {{trace_id=\"{trace}\"}} 0.5\nlat_bucket{{le=\"+Inf\"}} 2\nlat_count 2\nlat_sum 1.5\n# EOF\n")
    };
    let origin = Arc::new(Origin::default());
    let mut run = |text: String, now: i64| {
        c.ingest(text.as_bytes(), Format::OpenMetrics, now).unwrap();
        c.emit(&origin, false, now, &mut Dropped::default())
    };
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let out = run(body(trace), T0);
    let e = &numbers(find(&out, "req_total"))[0].exemplars;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].trace_id.map(|t| t[0]), Some(0x4b));
    assert_eq!(e[0].span_id.map(|s| s[7]), Some(0xb7));
    assert_eq!(
        attributes_to_json(&e[0].filtered_attributes),
        serde_json::json!({"user": "u1"})
    );
    assert_eq!(e[0].time_unix_nano, 1_700_000_000_500_000_000);
    assert_eq!(e[0].value, Some(Number::Double(1.0)));
    let Some(MetricData::Histogram { points, .. }) = &find(&out, "lat").data else {
        panic!()
    };
    assert_eq!(points[0].exemplars.len(), 1);
    assert_eq!(
        points[0].exemplars[0].time_unix_nano,
        T0 as u64 * 1_000_000,
        "no time: the scrape's"
    );

    // The same exemplar again: not sent twice. A new one: sent.
    let out = run(body(trace), T0 + 1000);
    assert!(numbers(find(&out, "req_total"))[0].exemplars.is_empty());
    let out = run(body("0af7651916cd43dd8448eb211c80319c"), T0 + 2000);
    assert_eq!(numbers(find(&out, "req_total"))[0].exemplars.len(), 1);

    // A malformed exemplar fails the scrape, as in Prometheus.
    let bad = "# TYPE req counter\nreq_total 5 # trace_id=1\n# EOF\n";
    assert!(c
        .ingest(bad.as_bytes(), Format::OpenMetrics, T0 + 3000)
        .is_err());
}

#[test]
fn histograms_keep_one_point_each_as_the_point_table_grows_and_buckets_are_added() {
    // The point table rehashes as it grows, recomputing each point's hash from its series'
    // labels; a bucket that appears later must still find its histogram's point there.
    let mut c = cache(SeriesSettings::default());
    let body = |n: usize, bounds: &[&str], v: u64| -> String {
        let mut out = String::from("# TYPE h histogram\n");
        for i in 0..n {
            for le in bounds {
                out += &format!("h_bucket{{route=\"r{i}\",le=\"{le}\"}} {v}\n");
            }
            out += &format!("h_sum{{route=\"r{i}\"}} 1.5\nh_count{{route=\"r{i}\"}} {v}\n");
        }
        out
    };
    let mut now = T0;
    for (n, bounds) in [
        (1, &["1", "+Inf"][..]),
        (40, &["1", "+Inf"]),
        (300, &["1", "+Inf"]),
        (300, &["0.5", "1", "+Inf"]),
    ] {
        now += 1000;
        let (r, out, _) = scrape(&mut c, &body(n, bounds, 7), now);
        assert!(r.is_ok(), "{r:?}");
        let Some(MetricData::Histogram { points, .. }) = &find(&out, "h").data else {
            panic!()
        };
        assert_eq!(points.len(), n, "one point per route at {n} routes");
        for p in points {
            assert_eq!(p.explicit_bounds.len(), bounds.len() - 1);
            assert_eq!((p.count, p.sum), (7, Some(1.5)));
        }
    }
}

#[test]
fn a_counter_with_its_own_timestamps_resets_after_its_previous_timestamp() {
    let mut c = cache(SeriesSettings {
        honor_timestamps: true,
        ..Default::default()
    });
    let body = |v: u32, ts: i64| format!("# TYPE c counter\nc {v} {ts}\ng 1\n");
    let (t1, t2, t3) = (T0 - 7_000, T0 + 8_000, T0 + 23_000);
    scrape(&mut c, &body(10, t1), T0).0.unwrap();
    let (_, out, _) = scrape(&mut c, &body(12, t2), T0 + 15_000);
    let p = &numbers(find(&out, "c"))[0];
    assert_eq!(p.start_time_unix_nano, t1 as u64 * 1_000_000);
    assert_eq!(p.time_unix_nano, t2 as u64 * 1_000_000, "its own time");
    let g = &numbers(find(&out, "g"))[0];
    assert_eq!(
        g.time_unix_nano,
        (T0 + 15_000) as u64 * 1_000_000,
        "the scrape's"
    );
    let (_, out, _) = scrape(&mut c, &body(3, t3), T0 + 30_000);
    let p = &numbers(find(&out, "c"))[0];
    assert_eq!(p.value, Some(Number::Double(3.0)));
    assert_eq!(
        p.start_time_unix_nano,
        (t2 + 1) as u64 * 1_000_000,
        "after its last own time"
    );
    assert_eq!(p.time_unix_nano, t3 as u64 * 1_000_000);
}

#[test]
fn a_series_text_longer_than_64_kib_is_kept_whole_and_forgotten_cleanly() {
    // Its length does not fit the slot's 16 bits: the arena keeps it before the text.
    let mut c = cache(SeriesSettings::default());
    let long = "v".repeat(70_000);
    let with_long = |v: u32| {
        format!(
            "# TYPE h histogram\nh_bucket{{x=\"{long}\",le=\"0.5\"}} {v}\nh_bucket{{x=\"{long}\",le=\"+Inf\"}} {v}\nh_count{{x=\"{long}\"}} {v}\nh_sum{{x=\"{long}\"}} 2\ng{{i=\"1\"}} {v}\n"
        )
    };
    assert_eq!(scrape(&mut c, &with_long(1), T0).0.unwrap().added, 5);
    let (r, out, _) = scrape(&mut c, &with_long(4), T0 + 1000);
    assert_eq!(
        r.unwrap().added,
        0,
        "every series found again, the long ones too"
    );
    let Some(MetricData::Histogram { points, .. }) = &find(&out, "h").data else {
        panic!()
    };
    assert_eq!(points[0].explicit_bounds, vec![0.5]);
    assert_eq!(points[0].count, 4);
    let x = find_attribute(&points[0].attributes, "x").and_then(|v| v.as_str());
    assert_eq!(x.map(str::len), Some(70_000));
    // The long series go (and the arena is compacted); the short one still hits the cache.
    let (r, _, _) = scrape(&mut c, "g{i=\"1\"} 5\n", T0 + 2000);
    assert_eq!(r.unwrap().added, 0);
    assert!(c.keys.len() < 100, "{} bytes kept", c.keys.len());
    let (r, out, _) = scrape(&mut c, "g{i=\"1\"} 6\n", T0 + 3000);
    assert_eq!(r.unwrap().added, 0);
    assert_eq!(numbers(find(&out, "g"))[0].value, Some(Number::Double(6.0)));
}
