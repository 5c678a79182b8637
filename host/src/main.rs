//! The `switchyard` binary: everything lives in the library; see [`switchyard::cli`].
//!
//! The binary picks the global allocator: mimalloc's thread-local free lists cost much less than
//! glibc `malloc` for the router's many short-lived allocations (requests, bodies, futures).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` (`include/mimalloc.h`, v3's `mi_option_e`).
#[cfg(target_os = "linux")]
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Runs before `main`, as the loader runs the binary's constructors: before Rust's runtime
/// makes the first allocation, which reserves the arena every later one is carved from.
///
/// Why: on Linux mimalloc commits its arenas eagerly by default, and memory it frees within them
/// is then given back lazily, so it stays in the process's RSS long after the heap shrank. Not
/// committed eagerly, the arena's freed pages leave the RSS: S10's peak went from 60–61 to
/// 48–49 MB, S1's from 44–45 to 35 MB (quick runs, three alternating pairs), router CPU per
/// event within the runs' spread. A `MIMALLOC_ARENA_EAGER_COMMIT` in the environment is
/// overridden; it would be read after this runs.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
#[used]
#[unsafe(link_section = ".init_array")]
static BEFORE_MAIN: extern "C" fn() = commit_arenas_lazily;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
extern "C" fn commit_arenas_lazily() {
    // SAFETY: `mi_option_set` stores an integer in mimalloc's option table; it takes no pointer,
    // allocates nothing, and is valid before mimalloc is initialised (the option is read when
    // the first arena is reserved, by the first allocation, after this).
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
}

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
