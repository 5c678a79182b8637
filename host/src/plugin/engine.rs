//! The one Wasmtime `Engine` and the epoch ticker that enforces call deadlines.
//!
//! Owns the engine configuration of DESIGN §7.3: Cranelift tuned for speed, epoch
//! interruption, copy-on-write memory images, and the pooling allocator, falling back to
//! on-demand allocation when the address space it reserves is not available.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// How often the epoch advances: the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Bytes of the pages an instance touched that a pooled memory resets in place (copied back
/// from the image or zeroed) when the instance is dropped, instead of handing them back to the
/// kernel. With `PAGEMAP_SCAN` (Linux 6.7 and later) only the touched pages are reset, wherever
/// they lie: a fresh Rust instance touches a few dozen KiB around its stack and heap, so its
/// memory is reset with no `madvise` (and no TLB shootdown) and the next instance in the slot
/// takes no page faults. Without the ioctl, the lowest bytes are reset whole, so this stays
/// small (DESIGN §7.3: 0–64 KiB).
const KEEP_RESIDENT_BYTES: usize = 64 << 10;
/// The same, when `PAGEMAP_SCAN` is available.
const KEEP_RESIDENT_SCANNED_BYTES: usize = 1 << 20;
/// Core instances per component instance the pool provides for; a Python component needs 14.
/// Wasmtime's per-component limits (20 core instances, 20 memories, 20 tables, 20,000 table
/// elements) already fit Python (14, 1, 2, ~5,700) and JavaScript (3, 1, 2, ~7,700) components.
const CORE_INSTANCES_PER_COMPONENT: u32 = 16;

/// How the engine is set up.
#[derive(Debug, Clone, Copy)]
pub struct EngineOptions {
    /// The largest memory any plugin may grow to; pooled slots are sized for it.
    pub max_memory: u64,
    /// Count instructions (for `switchyard plugin run`); costs speed, so off when serving.
    pub fuel: bool,
    /// Instances that may be alive at once (fresh calls in flight plus warm ones).
    pub max_instances: u32,
}

/// Builds the engine; `pooled` says whether the pooling allocator was available.
pub fn build(options: EngineOptions) -> Result<(Engine, bool), String> {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .consume_fuel(options.fuel)
        .cranelift_opt_level(OptLevel::Speed)
        .memory_init_cow(true);
    let keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
        KEEP_RESIDENT_SCANNED_BYTES
    } else {
        KEEP_RESIDENT_BYTES
    };
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .max_memory_size(usize::try_from(options.max_memory).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident)
        .pagemap_scan(Enabled::Auto)
        .total_component_instances(options.max_instances)
        // A Rust, C or JavaScript component instantiates 3 core modules, a Python one
        // (componentize-py: CPython, libc and their dependencies) 14. Slots are only address
        // space until used, so size for every instance being Python.
        .total_core_instances(options.max_instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(options.max_instances.saturating_mul(2))
        .total_tables(options.max_instances.saturating_mul(4))
        .total_stacks(options.max_instances);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    match Engine::new(&config) {
        Ok(engine) => return Ok((engine, true)),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "pooling allocator unavailable; allocating instances on demand");
        }
    }
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    Engine::new(&config).map(|engine| (engine, false)).map_err(|error| format!("{error:#}"))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::Builder::new().name("plugin-epoch".into()).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
        Ok(Self { stop, thread: Some(thread) })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Epoch ticks a call may run for: at least one whole tick beyond its timeout.
pub fn deadline_ticks(timeout: Duration) -> u64 {
    let tick = EPOCH_TICK.as_micros().max(1);
    u64::try_from(timeout.as_micros().div_ceil(tick)).unwrap_or(u64::MAX / 2).saturating_add(1)
}
