//! Replays the fuzz corpus on stable: every file of `fuzz/corpus/<target>/` (seeds and a minimized set) and of
//! `fuzz/regressions/<target>/` (inputs that once broke a property) through the same check the libFuzzer target
//! runs (`fuzz/checks/`). The fuzzing itself: scripts/fuzz.sh (nightly).

#[path = "../fuzz/checks/mod.rs"]
mod checks;

use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_and_regressions_keep_their_properties() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failures = Vec::new();
    for target in checks::TARGETS {
        let corpus = inputs(&root.join("corpus").join(target));
        let regressions = inputs(&root.join("regressions").join(target));
        assert!(!corpus.is_empty(), "fuzz/corpus/{target}/ has no input");
        for path in corpus.iter().chain(&regressions) {
            let data = std::fs::read(path).expect("a corpus file");
            if std::panic::catch_unwind(|| checks::run(target, &data)).is_err() {
                failures.push(path.display().to_string());
            }
        }
        println!("{target}: {} corpus inputs, {} regressions", corpus.len(), regressions.len());
    }
    assert!(failures.is_empty(), "properties violated by: {failures:#?}");
}
