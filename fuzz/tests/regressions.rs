//! Replays every committed input (the seed corpus and each crash found once, after its fix)
//! through its target: none may panic again.

use std::path::Path;

use switchyard_fuzz::{execute, quiet_panics, read_inputs, targets};

#[test]
fn every_committed_input_runs_without_a_panic() {
    quiet_panics();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut replayed = 0;
    for target in targets::ALL {
        for directory in ["corpus", "regressions"] {
            for (path, input) in read_inputs(&root.join(directory), target.name) {
                if let Err(message) = execute(target, &input) {
                    panic!("`{}` panics again: {message}", path.display());
                }
                replayed += 1;
            }
        }
    }
    assert!(replayed >= targets::ALL.len(), "every target has seeds: {replayed} inputs");
}
