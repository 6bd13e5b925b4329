//! The PromQL conformance harness: runs every `*.test` file (Prometheus's engine-test format,
//! see `sextant_rules::promqltest`) in `$SEXTANT_PROMQL_TESTDATA`, or in this directory's
//! `testdata/` when unset — our own cases, whose expected values `cross_check.rs` checks against
//! Prometheus itself (promtool). Each file is one test; each failing eval is printed with
//! what was expected and what came back, and the run ends with `N passed, M failed`, counting
//! eval commands.
//!
//! `SEXTANT_PROMQL_TESTDATA=DIR cargo test --release --test promql_conformance`

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use libtest_mimic::{Arguments, Failed, Trial};

mod cross_check;

#[derive(Default)]
struct Totals {
    passed: AtomicUsize,
    failed: AtomicUsize,
    skipped: AtomicUsize,
}

fn testdata_dir() -> PathBuf {
    match std::env::var_os("SEXTANT_PROMQL_TESTDATA") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/promql_conformance/testdata"),
    }
}

/// The `*.test` files of `dir`, sorted.
fn own_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn main() {
    let args = Arguments::from_args();
    let dir = testdata_dir();
    if let Err(e) = std::fs::read_dir(&dir) {
        eprintln!("cannot read {}: {e}", dir.display());
        std::process::exit(2);
    }
    let files = own_files(&dir);
    let totals = Arc::new(Totals::default());
    let trials: Vec<Trial> = files
        .iter()
        .cloned()
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let totals = Arc::clone(&totals);
            Trial::test(name, move || {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| Failed::from(format!("{}: {e}", path.display())))?;
                let report = sextant_rules::promqltest::run(&text);
                totals.passed.fetch_add(report.passed, Ordering::Relaxed);
                totals.failed.fetch_add(report.failed, Ordering::Relaxed);
                totals.skipped.fetch_add(report.skipped, Ordering::Relaxed);
                if report.failures.is_empty() {
                    Ok(())
                } else {
                    let mut message = format!(
                        "{}: {} of {} evals failed",
                        path.display(),
                        report.failed,
                        report.passed + report.failed
                    );
                    for failure in &report.failures {
                        message.push('\n');
                        message.push_str(failure);
                    }
                    Err(Failed::from(message))
                }
            })
        })
        .collect();
    let mut trials: Vec<Trial> = trials;
    if std::env::var_os("SEXTANT_PROMQL_TESTDATA").is_none() {
        trials.extend(own_files(&dir).into_iter().map(|path| {
            let name = format!(
                "prometheus_agrees/{}",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            );
            Trial::test(name, move || match cross_check::disagreements(&path) {
                Ok(found) if found.is_empty() => Ok(()),
                Ok(found) => Err(Failed::from(found.join("\n"))),
                Err(e) => Err(Failed::from(e)),
            })
        }));
    }
    let listing = args.list;
    let conclusion = libtest_mimic::run(&args, trials);
    if !listing {
        let skipped = totals.skipped.load(Ordering::Relaxed);
        if skipped > 0 {
            println!("{skipped} skipped (native histograms, functions outside the engine)");
        }
        println!(
            "{} passed, {} failed",
            totals.passed.load(Ordering::Relaxed),
            totals.failed.load(Ordering::Relaxed)
        );
    }
    conclusion.exit();
}
