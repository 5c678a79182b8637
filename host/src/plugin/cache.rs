//! Compiling components, and the `.cwasm` cache that makes restarts cheap.
//!
//! Owns the library's only `unsafe` (with one call into the allocator, see
//! [`give_back_freed_memory`]). A compiled component is machine code, so loading one
//! is only sound for artifacts this host wrote itself: the cache lives in the data directory
//! (created owner-only), files are named by the wasm's sha256 and the engine's compatibility
//! hash, and written to a temporary name then renamed, so a reader never sees half a file.
//! A cached file that does not load is compiled again and overwritten.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

/// Compiles the component at `wasm_path`, through the cache in `cache_dir` when given.
pub fn load(
    engine: &Engine,
    wasm_path: &Path,
    cache_dir: Option<&Path>,
) -> Result<Component, String> {
    let wasm = std::fs::read(wasm_path)
        .map_err(|error| format!("cannot read `{}`: {error}", wasm_path.display()))?;
    let Some(cache_dir) = cache_dir else {
        return on_own_threads(|| Component::new(engine, &wasm))
            .map_err(|error| compile_error(&error));
    };
    let cached = cache_dir.join(cache_name(engine, &wasm));
    if cached.is_file() {
        match deserialize(engine, &cached) {
            Ok(component) => return Ok(component),
            Err(error) => {
                tracing::warn!(path = %cached.display(), %error, "cached plugin does not load; compiling it again");
            }
        }
    }
    let compiled = on_own_threads(|| engine.precompile_component(&wasm));
    let compiled = compiled.map_err(|error| compile_error(&error))?;
    if let Err(error) = write_atomically(cache_dir, &cached, &compiled) {
        // The cache only saves time: run without it rather than refuse the plugin.
        tracing::warn!(path = %cached.display(), %error, "cannot write the plugin cache");
        return Component::new(engine, &wasm).map_err(|error| compile_error(&error));
    }
    deserialize(engine, &cached).map_err(|error| compile_error(&error))
}

/// Runs a compilation on threads of its own, which end with it. Why: Cranelift compiles a
/// component's functions in parallel on rayon's threads, and the allocator keeps what a
/// thread freed for that thread's next allocations; rayon's global pool stays idle for the
/// rest of the process's life, holding it.
fn on_own_threads<T: Send>(compile: impl FnOnce() -> T + Send) -> T {
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|index| format!("plugin-compile-{index}"))
        .build();
    match pool {
        Ok(pool) => pool.install(compile),
        Err(_) => compile(),
    }
}

/// Gives what compiling freed back to the system now; `PluginHost::load` calls it once its
/// plugins are loaded. mimalloc returns freed pages some time later, and only when it is next
/// called, which a router waiting for traffic does not do. With [`on_own_threads`], a router
/// idle 3 s after a start that compiled a Python plugin holds 112–141 MB instead of 434–445
/// (49 MB when the plugin came from the cache).
#[allow(unsafe_code)]
pub fn give_back_freed_memory() {
    // SAFETY: `mi_collect` takes no pointer; it frees mimalloc's unused pages. Harmless when
    // mimalloc is not the global allocator (the library's tests): it has nothing to free.
    unsafe { libmimalloc_sys::mi_collect(true) };
}

/// `<sha256 of the wasm>-<engine compatibility hash>.cwasm`: a new wasm or a new engine
/// configuration (or Wasmtime version) never meets an old artifact.
fn cache_name(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("{}-{:016x}.cwasm", hex::encode(Sha256::digest(wasm)), hasher.finish())
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, path: &Path) -> wasmtime::Result<Component> {
    // SAFETY: `path` is inside this host's own cache directory, named by the content hash of
    // the wasm it was compiled from and by this engine's compatibility hash, and only ever
    // written by `write_atomically` with the output of `Engine::precompile_component`. Wasmtime
    // also checks the artifact's header and engine configuration before using it.
    unsafe { Component::deserialize_file(engine, path) }
}

fn write_atomically(directory: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_directory(directory)?;
    let temporary: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Creates `directory` owner-only, and the parents it lacks as any other directory: a
/// recursive builder would give them the cache's mode too, and a parent shut to others can
/// break what else lives under it (a database server running as its own user, say).
fn create_private_directory(directory: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if let Some(parent) = directory.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(directory) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

fn compile_error(error: &wasmtime::Error) -> String {
    format!("not a valid component: {error:#}")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn only_the_cache_directory_is_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let cache = root.path().join("bench").join("plugin-cache");
        create_private_directory(&cache).unwrap();
        assert_eq!(mode(&cache), 0o700);
        let ordinary = root.path().join("ordinary");
        std::fs::create_dir(&ordinary).unwrap();
        assert_eq!(mode(&root.path().join("bench")), mode(&ordinary), "a parent keeps the default");
        create_private_directory(&cache).expect("an existing cache is fine");
    }
}
