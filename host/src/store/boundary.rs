//! The store's boundary, checked on the source tree: only `store/sqlite/` names rusqlite, and
//! nothing outside `store/` knows that SQLite is the backend (no `sqlite` in any form), but
//! where a user names a backend: `config/` (`store.backend = "sqlite"`) and the command line
//! (`cli.rs`: `switchyard store migrate --from sqlite`).
//!
//! Owns that check as a pure function of the files' paths and texts, table-tested, and one
//! test that runs it on `host/src`, so CI fails the moment the seam leaks.

use std::path::{Path, PathBuf};

/// Every way `files` (paths relative to `src/`, with their text) break the boundary.
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in files {
        let path = path.replace('\\', "/");
        // This file names what it looks for.
        if path == "store/boundary.rs" {
            continue;
        }
        if text.contains("rusqlite") && !path.starts_with("store/sqlite/") {
            found.push(format!("`{path}` names rusqlite outside `store/sqlite/`"));
        }
        let chooses_it = path.starts_with("config/") || path == "cli.rs";
        if text.to_lowercase().contains("sqlite") && !path.starts_with("store/") && !chooses_it {
            found.push(format!("`{path}` knows the store is SQLite"));
        }
    }
    found
}

/// Every `.rs` file under `directory`, with its path relative to `root`.
fn sources(root: &Path, directory: &Path, files: &mut Vec<(String, String)>) {
    let entries = std::fs::read_dir(directory).expect("the source tree is readable");
    for entry in entries {
        let path: PathBuf = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(root, &path, files);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file is text");
            let relative = path.strip_prefix(root).expect("under the root");
            files.push((relative.display().to_string(), text));
        }
    }
}

#[test]
fn nothing_outside_the_store_knows_its_backend() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &root, &mut files);
    assert!(files.len() > 50, "the source tree was found: {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_boundary_check_finds_each_kind_of_leak() {
    let file = |path: &str, text: &str| (path.to_owned(), text.to_owned());
    let found = violations(&[
        file("store/sqlite/ops.rs", "use rusqlite::Connection;"),
        file("store/mod.rs", "mod sqlite;"),
        file("store/backend.rs", "fn open(c: rusqlite::Connection)"),
        file("admin/log.rs", "let x = 1; // the SQLite rowid"),
        file("delivery/worker.rs", "use rusqlite::Row;"),
        file("app.rs", "use crate::store::Store;"),
        file("config/raw.rs", "/// `sqlite` or `jetstream`"),
        file("config/raw.rs", "use rusqlite::Row;"),
    ]);
    assert_eq!(
        found,
        [
            "`store/backend.rs` names rusqlite outside `store/sqlite/`",
            "`admin/log.rs` knows the store is SQLite",
            "`delivery/worker.rs` names rusqlite outside `store/sqlite/`",
            "`delivery/worker.rs` knows the store is SQLite",
            "`config/raw.rs` names rusqlite outside `store/sqlite/`",
        ]
    );
}
