//! The binary's command line against real processes: `validate` on good and bad files, the
//! embedded default end to end, and live reload (SIGHUP) with a good and a bad new config.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code: a failure should stop the test loudly

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::*;

fn sextant() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sextant"))
}

#[test]
fn validate_rejects_an_unknown_key_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yaml");
    std::fs::write(
        &f,
        "collector:\n  sources:\n    otlp:\n      type: otlp\n  sinks:\n    out:\n      type: file\n      inputs: [otlp]\n      path: /tmp/x\n      max_file_bytez: 1MiB\n",
    )
    .unwrap();
    let out = sextant()
        .args(["validate", "--config", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("collector.sinks.out.max_file_bytez"), "{err}");
    assert!(err.contains("line 10"), "{err}");
    assert!(err.contains("unknown field `max_file_bytez`"), "{err}");
}

#[test]
fn validate_rejects_bad_units_wiring_and_unset_variables() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("collector:\n  sources:\n    o: { type: otlp, ack_timeout: 30 }\n", "duration 30 has no unit"),
        ("collector:\n  sources:\n    o: { type: otlp }\n  sinks:\n    k: { type: blackhole, inputs: [nope] }\n", "\"nope\" is not a source"),
        ("data_dir: ${SEXTANT_TEST_UNSET_VAR}\ncollector: {}\n", "SEXTANT_TEST_UNSET_VAR"),
        // A sink none of whose inputs can produce what it sends.
        ("collector:\n  sources:\n    f: { type: file, include: [/tmp/x/*.log] }\n  sinks:\n    x: { type: aws_xray, inputs: [f] }\n", "sink of type aws_xray sends traces, and its inputs [\"f\"] produce only logs"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let f = dir.path().join(format!("c{i}.yaml"));
        std::fs::write(&f, text).unwrap();
        let out = sextant()
            .args(["validate", "--config", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!out.status.success(), "case {i} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "case {i}: {err}");
    }
    let out = sextant().args(["validate"]).output().unwrap();
    assert!(out.status.success(), "the embedded default is valid");
}

fn append(path: &Path, lines: std::ops::Range<usize>, tag: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for i in lines {
        writeln!(f, "{tag} {i}").unwrap();
    }
}

/// The bodies in a JSON-lines file written by the file sink.
fn bodies(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["body"].as_str().map(str::to_owned))
        .collect()
}

/// Sends SIGHUP and waits for `needle` in the process's log.
fn reload_and_see(proc: &Proc, log: &Path, needle: &str) {
    let _ = Command::new("kill")
        .args(["-HUP", &proc.pid().to_string()])
        .status();
    assert!(
        eventually(Duration::from_secs(10), || {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .contains(needle)
        }),
        "{needle:?} not logged after SIGHUP"
    );
}

fn config_text(dir: &Path, admin: u16, out: &str, extra_source: bool) -> String {
    let extra = if extra_source {
        format!("    second:\n      type: file\n      include: [\"{}/second/*.log\"]\n      tail: {{ glob_interval: 100ms }}\n", dir.display())
    } else {
        String::new()
    };
    let inputs = if extra_source {
        "[app, second]"
    } else {
        "[app]"
    };
    format!(
        "data_dir: {d}/data\nadmin: {{ address: \"127.0.0.1:{admin}\" }}\nagent:\n  sources:\n    app:\n      type: file\n      include: [\"{d}/logs/*.log\"]\n      tail: {{ glob_interval: 100ms }}\n{extra}  sinks:\n    out:\n      type: file\n      inputs: {inputs}\n      path: {d}/{out}\n      batch: {{ timeout: 100ms }}\n",
        d = dir.display()
    )
}

#[test]
fn sighup_applies_a_changed_config_without_losing_lines_and_refuses_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("logs")).unwrap();
    std::fs::create_dir_all(dir.path().join("second")).unwrap();
    let admin = free_port();
    let cfg = dir.path().join("sextant.yaml");
    std::fs::write(&cfg, config_text(dir.path(), admin, "out1", false)).unwrap();
    let app = dir.path().join("logs/app.log");
    append(&app, 0..100, "before");
    let mut proc = start_sextant("agent", &cfg, &dir.path().join("sextant.log"));
    let out1 = dir.path().join("out1/logs.jsonl");
    assert!(
        eventually(Duration::from_secs(10), || bodies(&out1).len() == 100),
        "first 100 lines in out1"
    );

    // A changed sink and a new source: the sink is rebuilt, the unchanged source keeps running.
    std::fs::write(&cfg, config_text(dir.path(), admin, "out2", true)).unwrap();
    let log = dir.path().join("sextant.log");
    reload_and_see(&proc, &log, "config reloaded");
    append(&app, 0..50, "after");
    append(&dir.path().join("second/s.log"), 0..10, "second");
    let out2 = dir.path().join("out2/logs.jsonl");
    assert!(
        eventually(Duration::from_secs(10), || bodies(&out2).len() == 60),
        "got {:?}",
        bodies(&out2).len()
    );
    let all: Vec<String> = bodies(&out1).into_iter().chain(bodies(&out2)).collect();
    for i in 0..100 {
        assert_eq!(
            all.iter().filter(|b| **b == format!("before {i}")).count(),
            1,
            "before {i}"
        );
    }
    for i in 0..50 {
        assert_eq!(
            all.iter().filter(|b| **b == format!("after {i}")).count(),
            1,
            "after {i}"
        );
    }
    assert_eq!(
        bodies(&out1).len(),
        100,
        "nothing more goes to the old sink"
    );

    // A config that does not validate is refused; the running one keeps working.
    std::fs::write(
        &cfg,
        "agent:\n  sources:\n    app: { type: file, includ: [] }\n",
    )
    .unwrap();
    reload_and_see(&proc, &log, "config reload refused");
    append(&app, 50..60, "after");
    assert!(
        eventually(Duration::from_secs(10), || bodies(&out2).len() == 70),
        "still flowing after a refused reload"
    );

    // A reload that removes the only sink of an unchanged source is refused too: the source
    // would otherwise checkpoint lines sent nowhere.
    let sinkless = config_text(dir.path(), admin, "out2", true);
    let sinkless = &sinkless[..sinkless.find("  sinks:").unwrap()];
    std::fs::write(&cfg, sinkless).unwrap();
    reload_and_see(&proc, &log, "no sink reads this source");
    append(&app, 60..70, "kept");
    assert!(
        eventually(Duration::from_secs(10), || bodies(&out2).len() == 80),
        "the running sink keeps the source's lines"
    );
    assert!(proc.terminate(Duration::from_secs(15)));
}

#[test]
fn the_embedded_default_runs_writes_events_and_stops_cleanly() {
    // Runs from a scratch copy of the repository's layout: the default reads ./examples/logs
    // and writes ./sextant-data, relative to where it is started.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("examples/logs")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected = 0;
    for f in std::fs::read_dir(root.join("examples/logs")).unwrap() {
        let f = f.unwrap().path();
        expected += std::fs::read_to_string(&f).unwrap().lines().count();
        std::fs::copy(
            &f,
            dir.path()
                .join("examples/logs")
                .join(f.file_name().unwrap()),
        )
        .unwrap();
    }
    assert!(expected > 0);
    // The default's ports (8686, 4318) move with these variables, so the test cannot collide.
    let (admin, otlp) = (free_port(), free_port());
    let log = std::fs::File::create(dir.path().join("run.log")).unwrap();
    let child = sextant()
        .arg("run")
        .current_dir(dir.path())
        .env("SEXTANT_ADMIN_ADDRESS", format!("127.0.0.1:{admin}"))
        .env("SEXTANT_OTLP_ADDRESS", format!("127.0.0.1:{otlp}"))
        .stderr(log)
        .spawn()
        .unwrap();
    let mut proc = Proc {
        child,
        name: "sextant",
    };
    let out = dir.path().join("sextant-data/out/logs.jsonl");
    assert!(
        eventually(Duration::from_secs(15), || bodies(&out).len() == expected),
        "{} of {expected}",
        bodies(&out).len()
    );
    // Its own metrics, scraped from the admin endpoint, arrive too: `up` is 1 for job
    // `sextant`, and the file sink's own counter is among the series.
    let metrics = dir.path().join("sextant-data/out/metrics.jsonl");
    let records = || -> Vec<serde_json::Value> {
        std::fs::read_to_string(&metrics)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(25), || records().iter().any(|r| r
            ["name"]
            == "up"
            && r["resource"]["service.name"] == "sextant"
            && r["points"][0]["value"] == 1.0)),
        "no scrape of its own metrics"
    );
    assert!(records()
        .iter()
        .any(|r| r["name"] == "sextant_component_sent_events_total" && r["type"] == "sum"));
    // And this machine's, as node_exporter names them.
    assert!(
        eventually(Duration::from_secs(15), || records()
            .iter()
            .any(
                |r| r["name"] == "node_cpu_seconds_total" && r["type"] == "sum"
            )),
        "no host metrics"
    );
    // The sink counts a batch once it is written, which can be just after the events show:
    // every log line and every metric point, once.
    let points = || -> u64 {
        records()
            .iter()
            .map(|r| r["points"].as_array().map_or(0, |p| p.len() as u64))
            .sum()
    };
    let sent = || {
        http_get(&format!("http://127.0.0.1:{admin}/metrics")).map(|(_, m)| {
            metric_sum(
                &m,
                "sextant_component_sent_events_total",
                &["component=\"local_files\""],
            )
        })
    };
    assert!(
        eventually(Duration::from_secs(10), || sent()
            == Some((expected as u64 + points()) as f64)),
        "sent {:?} of {expected} lines and {} points",
        sent(),
        points()
    );
    assert_eq!(
        http_get(&format!("http://127.0.0.1:{admin}/readyz"))
            .unwrap()
            .0,
        200
    );
    assert!(
        proc.terminate(Duration::from_secs(10)),
        "Ctrl-C/SIGTERM stops it cleanly within the drain deadline"
    );
    // Its own logs went to a file, as in every container: plain text, no colour codes.
    let logged = std::fs::read_to_string(dir.path().join("run.log")).unwrap();
    assert!(logged.contains("INFO"), "{logged}");
    assert!(
        !logged.contains('\x1b'),
        "ANSI escape codes in a log written to a file: {logged}"
    );
}

#[test]
fn every_yaml_example_in_the_readme_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut examples = 0;
    for (i, block) in readme.split("```yaml\n").skip(1).enumerate() {
        let yaml = &block[..block.find("```").unwrap()];
        let f = dir.path().join(format!("example{i}.yaml"));
        std::fs::write(&f, yaml).unwrap();
        let out = sextant()
            .args(["validate", "--config", f.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "README example {i} does not validate: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        examples += 1;
    }
    assert!(examples >= 1, "the README shows its configuration");
}
