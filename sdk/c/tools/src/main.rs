//! `switchyard-c`: the two steps of a C plugin build that need the component model.
//!
//! - `switchyard-c bindings <wit-dir> <out-dir>` writes the C bindings of the world `plugin`
//!   (`plugin.h`, `plugin.c`), as `wit-bindgen c` would, without the type object file: the
//!   world is embedded by the next step instead.
//! - `switchyard-c component <wit-dir> <core.wasm> <out.wasm>` embeds the world's type
//!   information in clang's core module and wraps it into a component, adapting its WASI
//!   preview 1 imports with the reactor adapter of Wasmtime 48 (the host's version).
//! - `switchyard-c go-bindings <wit-dir> <out-dir> <go-package>` writes the Go bindings of the
//!   world as library packages under `<go-package>`, as `wit-bindgen go --pkg-name` would. The
//!   Go SDK commits its output (`sdk/go/gen`); plugin builds never run it. `component` turns
//!   Go's core module into a component the same way as clang's.
//! - `switchyard-c go-runtime <out-dir>` writes the Go module the bindings import
//!   (`go.bytecodealliance.org/pkg`), as the `wit-bindgen-go` crate this tool is built with
//!   ships it (`build.rs` embeds it); the Go SDK's `plugin.mk` runs it before every `go build`,
//!   and a project's `go.mod` replaces the module by that directory.
//!
//! Everything else (compiling, linking) is clang's business; see `sdk/c/README.md`.

use std::path::Path;

use anyhow::{Context, bail};
use wit_bindgen_core::Files;
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::{Resolve, WorldId};

const WORLD: &str = "plugin";
const FORCE_LINK_STUB: &str = "
// Added by switchyard-c: the world's type information is embedded by `switchyard-c component`.
void __component_type_object_force_link_plugin(void) {}
";
const USAGE: &str = "usage:
  switchyard-c bindings <wit-dir> <out-dir>
  switchyard-c component <wit-dir> <core.wasm> <out.wasm>
  switchyard-c go-bindings <wit-dir> <out-dir> <go-package>
  switchyard-c go-runtime <out-dir>";

include!(concat!(env!("OUT_DIR"), "/go_runtime.rs"));

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bindings", wit, out] => bindings(Path::new(wit), Path::new(out)),
        ["component", wit, core, out] => component(Path::new(wit), Path::new(core), Path::new(out)),
        ["go-bindings", wit, out, package] => go_bindings(Path::new(wit), Path::new(out), package),
        ["go-runtime", out] => go_runtime(Path::new(out)),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    }
}

fn world(wit: &Path) -> anyhow::Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_dir(wit)?;
    let world = resolve.select_world(&[package], Some(WORLD))?;
    Ok((resolve, world))
}

fn bindings(wit: &Path, out: &Path) -> anyhow::Result<()> {
    let (mut resolve, world) = world(wit)?;
    let options = wit_bindgen_c::Opts { no_object_file: true, ..Default::default() };
    let mut files = Files::default();
    options.build().generate(&mut resolve, world, &mut files)?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create `{}`", out.display()))?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        let mut contents = contents.to_vec();
        if name.ends_with(".c") {
            // The bindings reference the type object file they were told not to write; the
            // world is embedded by `component` instead, so the reference needs only a body.
            contents.extend_from_slice(FORCE_LINK_STUB.as_bytes());
        }
        let contents = contents.as_slice();
        // Unchanged files keep their time stamps, so `make` does not rebuild for nothing.
        if std::fs::read(&path).is_ok_and(|existing| existing == contents) {
            continue;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

fn go_bindings(wit: &Path, out: &Path, package: &str) -> anyhow::Result<()> {
    let (mut resolve, world) = world(wit)?;
    // `gofmt` formats the files when it is on PATH; the Go SDK's README says to have it there.
    let options = wit_bindgen_go::Opts { pkg_name: Some(package.to_owned()), ..Default::default() };
    let mut files = Files::default();
    options.build().generate(&mut resolve, world, &mut files)?;
    for (name, contents) in files.iter() {
        let path = out.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    Ok(())
}

/// Writes the embedded Go module under `out`: unchanged files keep their time stamps, and Go
/// sources that the module no longer has (left by another version) are removed.
fn go_runtime(out: &Path) -> anyhow::Result<()> {
    for (relative, contents) in GO_RUNTIME {
        let path = out.join(relative);
        if std::fs::read(&path).is_ok_and(|existing| existing == *contents) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write `{}`", path.display()))?;
    }
    remove_stale_sources(out, &out.join("wit"))
}

fn remove_stale_sources(out: &Path, directory: &Path) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(directory)
        .with_context(|| format!("cannot read `{}`", directory.display()))?;
    for entry in entries {
        let path = entry.with_context(|| format!("cannot read `{}`", directory.display()))?.path();
        if path.is_dir() {
            remove_stale_sources(out, &path)?;
            continue;
        }
        let source =
            path.extension().is_some_and(|extension| extension == "go" || extension == "s");
        let relative = path.strip_prefix(out).unwrap_or(&path);
        let known = GO_RUNTIME.iter().any(|(name, _)| Path::new(name) == relative);
        if source && !known {
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove `{}`", path.display()))?;
        }
    }
    Ok(())
}

fn component(wit: &Path, core: &Path, out: &Path) -> anyhow::Result<()> {
    let (resolve, world) = world(wit)?;
    let mut module =
        std::fs::read(core).with_context(|| format!("cannot read `{}`", core.display()))?;
    if !module.starts_with(b"\0asm\x01\0\0\0") {
        bail!("`{}` is not a core WebAssembly module", core.display());
    }
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        StringEncoding::UTF8,
        false,
    )?;
    let component = ComponentEncoder::default()
        .module(&module)?
        .adapter(
            "wasi_snapshot_preview1",
            wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .validate(true)
        .encode()
        .context("cannot make a component of the module")?;
    std::fs::write(out, component).with_context(|| format!("cannot write `{}`", out.display()))
}
