//! The `switchyard` binary: everything lives in the library; see [`switchyard::cli`].
//!
//! The binary picks the global allocator: mimalloc's thread-local free lists cost much less than
//! glibc `malloc` for the router's many short-lived allocations (requests, bodies, futures).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    switchyard::cli::main()
}
