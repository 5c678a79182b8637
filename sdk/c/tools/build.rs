//! Finds the Go module `go.bytecodealliance.org/pkg` inside the `wit-bindgen-go` package this
//! tool is built with (its `src/pkg`, as crates.io distributes it) and writes
//! `$OUT_DIR/go_runtime.rs`: one `include_bytes!` per file of the module that a Go build needs
//! (`go.mod`, `LICENSE`, the `.go` and `.s` files under `wit/`), for `switchyard-c go-runtime`.
//!
//! It must not copy the module anywhere but into the binary, and must not reach the network:
//! the package is located with `cargo metadata --offline` against the locked dependencies.

use std::path::{Path, PathBuf};

const PACKAGE: &str = "wit-bindgen-go";

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=Cargo.lock");
    let module = module_directory();
    let mut files = vec![module.join("go.mod"), module.join("LICENSE")];
    collect_sources(&module.join("wit"), &mut files);
    let mut entries = String::new();
    for file in &files {
        let relative = file.strip_prefix(&module).expect("collected under the module");
        let relative = relative.to_str().expect("the module's file names are UTF-8");
        let absolute = file.to_str().expect("the registry's paths are UTF-8");
        // `{:?}` writes a Rust string literal, escapes included.
        entries.push_str(&format!("    ({relative:?}, include_bytes!({absolute:?})),\n"));
    }
    let output = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let generated = format!(
        "/// The files of `go.bytecodealliance.org/pkg`, by path under the module's root.\n\
         pub const GO_RUNTIME: &[(&str, &[u8])] = &[\n{entries}];\n"
    );
    std::fs::write(output.join("go_runtime.rs"), generated).expect("OUT_DIR is writable");
}

/// `src/pkg` of the locked `wit-bindgen-go` package.
fn module_directory() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(&std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline", "--locked", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("`cargo metadata` runs");
    assert!(
        output.status.success(),
        "`cargo metadata` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("`cargo metadata` writes JSON");
    // The resolved dependency graph is the locked one: the root's edge to the package names
    // the exact version built.
    let resolve = &metadata["resolve"];
    let root = &resolve["root"];
    let nodes = resolve["nodes"].as_array().expect("`resolve.nodes` is an array");
    let node = nodes.iter().find(|node| &node["id"] == root).expect("the root is resolved");
    let dependencies = node["deps"].as_array().expect("`deps` is an array");
    let identifier = &dependencies
        .iter()
        .find(|dependency| dependency["name"] == PACKAGE.replace('-', "_"))
        .unwrap_or_else(|| panic!("`{PACKAGE}` is not a dependency"))["pkg"];
    let packages = metadata["packages"].as_array().expect("`packages` is an array");
    let package = packages
        .iter()
        .find(|package| &package["id"] == identifier && package["name"] == PACKAGE)
        .unwrap_or_else(|| panic!("no `{PACKAGE}` package for `{identifier}`"));
    let version = package["version"].as_str().expect("`version` is a string");
    let manifest_path = package["manifest_path"].as_str().expect("`manifest_path` is a string");
    let module = Path::new(manifest_path).with_file_name("src").join("pkg");
    assert!(
        module.join("go.mod").is_file(),
        "`{PACKAGE}` {version} has no Go module at `{}`",
        module.display()
    );
    module
}

/// The `.go` and `.s` files under `directory`, recursively, in a stable order.
fn collect_sources(directory: &Path, files: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(directory)
        .unwrap_or_else(|error| panic!("cannot read `{}`: {error}", directory.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_sources(&path, files);
        } else if path.extension().is_some_and(|extension| extension == "go" || extension == "s") {
            files.push(path);
        }
    }
}
