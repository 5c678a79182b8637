//! `switchyard-c`: the two steps of a C plugin build that need the component model.
//!
//! - `switchyard-c bindings <wit-dir> <out-dir>` writes the C bindings of the world `plugin`
//!   (`plugin.h`, `plugin.c`), as `wit-bindgen c` would, without the type object file: the
//!   world is embedded by the next step instead.
//! - `switchyard-c component <wit-dir> <core.wasm> <out.wasm>` embeds the world's type
//!   information in clang's core module and wraps it into a component, adapting its WASI
//!   preview 1 imports with the reactor adapter of Wasmtime 48 (the host's version).
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
  switchyard-c component <wit-dir> <core.wasm> <out.wasm>";

fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match arguments.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["bindings", wit, out] => bindings(Path::new(wit), Path::new(out)),
        ["component", wit, core, out] => component(Path::new(wit), Path::new(core), Path::new(out)),
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
