//! `sextant test-rules` against `promtool test rules` (Debian's Prometheus 2.42, the
//! reference): every unit-test file under `tests/rules/unit/` gets the same verdict and exit
//! status from both. Files under `must_fail/` must fail in both — the corpus holds tests that
//! fail, so a runner that passes everything is caught.

use std::path::{Path, PathBuf};

fn unit_test_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(unit_test_files(&path));
        } else if path.extension().is_some_and(|e| e == "yml") {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn exit_code(program: &str, args: &[&str], file: &Path) -> (i32, String) {
    let file = file.to_str().unwrap();
    let args: Vec<&str> = args.iter().copied().chain([file]).collect();
    crate::common::run_program(program, &args)
}

#[test]
fn test_rules_gives_promtools_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/rules/unit");
    let files = unit_test_files(&dir);
    assert!(files.len() >= 10, "the corpus is {} files", files.len());
    let mut disagreements = Vec::new();
    let mut failing = 0;
    for file in &files {
        let (promtool, promtool_output) = exit_code("promtool", &["test", "rules"], file);
        let (sextant, sextant_output) =
            exit_code(env!("CARGO_BIN_EXE_sextant"), &["test-rules"], file);
        let must_fail = file.components().any(|c| c.as_os_str() == "must_fail");
        if promtool != sextant || (promtool == 0) == must_fail {
            disagreements.push(format!(
                "{}: promtool exits {promtool}, sextant {sextant}{}\n--- promtool\n{promtool_output}\n--- sextant\n{sextant_output}",
                file.display(),
                if must_fail { " (must fail)" } else { "" }
            ));
        }
        failing += usize::from(promtool != 0);
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
    assert!(failing >= 7, "only {failing} failing files");
}
