//! The C, Go and Zig SDKs and the WIT, built into the binary, so that `plugin new` works where
//! the source checkout is not (a binary copied to another machine).
//!
//! Owns the list of embedded files and their installation into a versioned directory
//! (`<sdk home>/<version>/<language>`, written once, rewritten only where a file differs). It
//! must not decide when the embedded copy is used (that is `scaffold`'s business) and holds no
//! SDK that is a package (Rust, Python, JavaScript); it answers the version those packages
//! carry, the WIT package's.

use std::path::{Path, PathBuf};

use anyhow::Context;

macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../../sdk/", $path)))),*]
    };
}

/// Every embedded file, by its path under `sdk/`. The `wit` links of the checkout are copies
/// here. A test compares this list with the checkout, so a new SDK file cannot be forgotten.
pub const FILES: &[(&str, &str)] = embed![
    "wit/switchyard.wit",
    "c/README.md",
    "c/include/switchyard.h",
    "c/plugin.mk",
    "c/src/switchyard.c",
    "c/tools/.gitignore",
    "c/tools/Cargo.lock",
    "c/tools/Cargo.toml",
    "c/tools/build.rs",
    "c/tools/src/main.rs",
    "c/wit/switchyard.wit",
    "go/README.md",
    "go/crypto.go",
    "go/gen/exports/export_wit_world/handle.go",
    "go/gen/exports/wit_exports/wit_exports.go",
    "go/gen/imports/switchyard_plugin_crypto/empty.s",
    "go/gen/imports/switchyard_plugin_crypto/wit_bindings.go",
    "go/gen/imports/switchyard_plugin_host/empty.s",
    "go/gen/imports/switchyard_plugin_host/wit_bindings.go",
    "go/gen/imports/switchyard_plugin_types/empty.s",
    "go/gen/imports/switchyard_plugin_types/wit_bindings.go",
    "go/gen/imports/wit_world/empty.s",
    "go/gen/imports/wit_world/wit_bindings.go",
    "go/go.mod",
    "go/host.go",
    "go/json.go",
    "go/plugin.go",
    "go/plugin.mk",
    "go/wit/switchyard.wit",
    "zig/README.md",
    "zig/plugin.mk",
    "zig/switchyard.zig",
    "zig/wit/switchyard.wit",
];

/// The version of the WIT package `switchyard:plugin` this binary embeds, which is also the
/// version of every SDK package (`switchyard-sdk`, `switchyard-plugin`, `@switchyard/plugin`).
pub fn package_version() -> &'static str {
    let wit = FILES[0].1;
    wit.lines()
        .find_map(|line| line.trim().strip_prefix("package switchyard:plugin@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .expect("the embedded WIT declares `package switchyard:plugin@<version>;`")
}

/// Where the embedded SDKs are installed: `SWITCHYARD_SDK_HOME`, else
/// `$XDG_DATA_HOME/switchyard/sdk`, else `$HOME/.local/share/switchyard/sdk`.
pub fn home() -> anyhow::Result<PathBuf> {
    let variable = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    if let Some(home) = variable("SWITCHYARD_SDK_HOME") {
        return Ok(PathBuf::from(home));
    }
    if let Some(data) = variable("XDG_DATA_HOME") {
        return Ok(PathBuf::from(data).join("switchyard").join("sdk"));
    }
    let home = variable("HOME").context(
        "no place for the embedded SDKs: set `SWITCHYARD_SDK_HOME` (or `HOME`), or pass `--sdk`",
    )?;
    Ok(PathBuf::from(home).join(".local/share/switchyard/sdk"))
}

/// Installs the embedded SDKs under `home/<version>` and answers that directory. Files that
/// already hold the right contents are left alone (their time stamps keep `make` quiet).
pub fn install(home: &Path) -> anyhow::Result<PathBuf> {
    let root = home.join(env!("CARGO_PKG_VERSION"));
    for (relative, contents) in FILES {
        let path = root.join(relative);
        if std::fs::read(&path).is_ok_and(|existing| existing == contents.as_bytes()) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of the checkout's C, Go and Zig SDKs (following the `wit` links).
    fn checkout_files(directory: &Path, relative: &str, files: &mut Vec<String>) {
        for entry in std::fs::read_dir(directory.join(relative)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let child =
                if relative.is_empty() { name.clone() } else { format!("{relative}/{name}") };
            // Build output and the tool's target directory are not part of an SDK.
            if matches!(name.as_str(), "target" | "build" | "node_modules") {
                continue;
            }
            if directory.join(&child).is_dir() {
                checkout_files(directory, &child, files);
            } else {
                files.push(child);
            }
        }
    }

    #[test]
    fn the_embedded_files_are_the_checkouts_c_go_and_zig_sdks() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let mut expected = vec!["wit/switchyard.wit".to_owned()];
        for language in ["c", "go", "zig"] {
            checkout_files(&sdk, language, &mut expected);
        }
        expected.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(path, _)| path.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, expected, "add new SDK files to `FILES`");
    }

    /// The SDK packages carry the WIT package's version, and those that hold a copy of the WIT
    /// (rather than a link to it) hold the same text.
    #[test]
    fn the_sdk_packages_carry_the_wit_package_version() {
        let version = package_version();
        assert_eq!(FILES[0].0, "wit/switchyard.wit");
        assert!(version.split('.').all(|part| part.parse::<u32>().is_ok()), "{version}");
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let read = |relative: &str| std::fs::read_to_string(sdk.join(relative)).unwrap();
        for manifest in ["rust/Cargo.toml", "rust/macros/Cargo.toml", "python/pyproject.toml"] {
            let parsed: toml::Value = toml::from_str(&read(manifest)).unwrap();
            let table = parsed.get("package").or_else(|| parsed.get("project")).unwrap();
            assert_eq!(table["version"].as_str(), Some(version), "{manifest}");
        }
        let rust: toml::Value = toml::from_str(&read("rust/Cargo.toml")).unwrap();
        let macros = &rust["dependencies"]["switchyard-sdk-macros"]["version"];
        assert_eq!(macros.as_str(), Some(format!("={version}").as_str()));
        let js: serde_json::Value = serde_json::from_str(&read("js/package.json")).unwrap();
        assert_eq!(js["version"].as_str(), Some(version));
        for copy in ["js/wit/switchyard.wit", "rust/wit/switchyard.wit"] {
            assert_eq!(read(copy), FILES[0].1, "`sdk/{copy}` differs from `sdk/wit`");
        }
    }

    #[test]
    fn installing_twice_writes_the_same_tree_once() {
        let home = tempfile::tempdir().unwrap();
        let root = install(home.path()).unwrap();
        assert!(root.ends_with(env!("CARGO_PKG_VERSION")));
        let header = root.join("c/include/switchyard.h");
        let written = std::fs::metadata(&header).unwrap().modified().unwrap();
        assert_eq!(install(home.path()).unwrap(), root);
        assert_eq!(std::fs::metadata(&header).unwrap().modified().unwrap(), written);
        for (relative, contents) in FILES {
            assert_eq!(&std::fs::read_to_string(root.join(relative)).unwrap(), contents);
        }
    }
}
