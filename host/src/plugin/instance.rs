//! One call of one plugin: instantiate (or reuse a warm instance), arm the deadline, call
//! its export (`handle` or `handle-packed`), classify what happened.
//!
//! Owns the per-call rules of DESIGN §7.3: the epoch deadline is armed before instantiation
//! and again before every call; a warm instance is recycled after [`WARM_MAX_CALLS`] calls,
//! [`WARM_MAX_AGE`], or any trap (a trapped instance is poisoned and is always dropped).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap};

use super::bindings::{self, Entry, EntryPre};
use super::engine::deadline_ticks;
use super::state::{Binding, CallState};
use super::{CallError, CallReport, LogLevel};
use crate::config::Instances;
use crate::event::Event;

/// A warm instance serves at most this many calls.
pub const WARM_MAX_CALLS: u32 = 1000;
/// A warm instance lives at most this long.
pub const WARM_MAX_AGE: Duration = Duration::from_secs(60);
/// Fuel given to a call when instructions are counted: far more than any deadline allows.
const FUEL_BUDGET: u64 = u64::MAX / 4;
/// Log lines per second a plugin may send to the host's log; the rest are counted.
const LOG_LINES_PER_SECOND: u32 = 100;

/// A plugin ready to instantiate: linked against the world once, at load.
pub struct LoadedPlugin {
    pub id: String,
    pub pre: EntryPre<CallState>,
    pub binding: Arc<Binding>,
    pub timeout: Duration,
    pub memory: u64,
    pub instances: Instances,
    log_budget: Mutex<LogBudget>,
}

impl std::fmt::Debug for LoadedPlugin {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("LoadedPlugin").field("id", &self.id).finish_non_exhaustive()
    }
}

/// What the host log accepts from one plugin in the current second.
#[derive(Debug)]
struct LogBudget {
    window: Instant,
    lines: u32,
    suppressed: u64,
}

/// How calls run.
#[derive(Debug, Clone, Copy)]
pub struct CallSettings {
    pub fuel: bool,
    /// Send plugin log lines to the host's log (the CLI prints them itself instead).
    pub emit_logs: bool,
}

/// A live instance and its store.
struct Live {
    store: Store<CallState>,
    entry: Entry,
    calls: u32,
    created: Instant,
}

/// The warm instances of one thread, one per warm plugin.
#[derive(Default)]
pub struct WarmInstances {
    by_plugin: HashMap<String, Live>,
}

impl std::fmt::Debug for WarmInstances {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_list().entries(self.by_plugin.keys()).finish()
    }
}

/// The linker every plugin is checked against: the world's imports and a capability-free
/// WASI p2, nothing else.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<CallState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    bindings::Plugin::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(
        &mut linker,
        |state| state,
    )?;
    Ok(linker)
}

impl LoadedPlugin {
    pub fn new(
        id: String,
        pre: EntryPre<CallState>,
        binding: Arc<Binding>,
        timeout: Duration,
        memory: u64,
        instances: Instances,
    ) -> Self {
        let log_budget = LogBudget { window: Instant::now(), lines: 0, suppressed: 0 };
        Self { id, pre, binding, timeout, memory, instances, log_budget: Mutex::new(log_budget) }
    }

    /// Runs one call of the plugin on `event`.
    pub fn call(
        &self,
        engine: &Engine,
        event: &Event,
        now_override: Option<u64>,
        warm: &mut WarmInstances,
        settings: CallSettings,
    ) -> CallReport {
        let started = Instant::now();
        let reusable = match self.instances {
            Instances::Warm => warm.by_plugin.remove(&self.id).filter(|live| {
                live.calls < WARM_MAX_CALLS && live.created.elapsed() < WARM_MAX_AGE
            }),
            Instances::Fresh => None,
        };
        let mut live = match reusable {
            Some(live) => live,
            None => match self.instantiate(engine, settings.fuel) {
                Ok(live) => live,
                Err(error) => {
                    return CallReport::failed(self.classify(&error, None), started.elapsed());
                }
            },
        };
        let store = &mut live.store;
        store.data_mut().now_override = now_override;
        store.set_epoch_deadline(deadline_ticks(self.timeout));
        let fuel_before = settings.fuel.then(|| {
            let _ = store.set_fuel(FUEL_BUDGET);
            FUEL_BUDGET
        });
        let result = live.entry.call(&mut live.store, event);
        let elapsed = started.elapsed();
        let instructions =
            fuel_before.and_then(|before| live.store.get_fuel().ok().map(|left| before - left));
        let log = live.store.data_mut().take_log();
        let peak_memory = live.store.data().limiter.peak;
        let answer = match result {
            Ok(answer) => Ok(bindings::from_guest(answer)),
            Err(error) => Err(self.classify(&error, Some(live.store.data()))),
        };
        if settings.emit_logs {
            self.emit(event, &log.lines, log.dropped);
        }
        live.calls += 1;
        if answer.is_ok() && self.instances == Instances::Warm {
            warm.by_plugin.insert(self.id.clone(), live);
        }
        CallReport {
            answer,
            log: log.lines,
            dropped_log_lines: log.dropped,
            elapsed,
            instructions,
            peak_memory,
        }
    }

    fn instantiate(&self, engine: &Engine, fuel: bool) -> wasmtime::Result<Live> {
        let mut store = Store::new(engine, CallState::new(self.binding.clone(), self.memory));
        store.limiter(|state| &mut state.limiter);
        // A store with epochs on and no deadline traps at once; start functions count too.
        store.set_epoch_deadline(deadline_ticks(self.timeout));
        if fuel {
            store.set_fuel(FUEL_BUDGET)?;
        }
        let entry = self.pre.instantiate(&mut store)?;
        Ok(Live { store, entry, calls: 0, created: Instant::now() })
    }

    fn classify(&self, error: &wasmtime::Error, state: Option<&CallState>) -> CallError {
        if state.is_some_and(|state| state.limiter.exceeded) {
            return CallError::MemoryLimit(self.memory);
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => CallError::Timeout(self.timeout),
            Some(Trap::OutOfFuel) => CallError::Trap("ran out of fuel".into()),
            _ => CallError::Trap(format!("{error:#}")),
        }
    }

    /// Sends the call's lines to the host log, within [`LOG_LINES_PER_SECOND`].
    fn emit(&self, event: &Event, lines: &[super::LogLine], dropped: usize) {
        let mut budget = self.log_budget.lock().unwrap_or_else(PoisonError::into_inner);
        if budget.window.elapsed() >= Duration::from_secs(1) {
            if budget.suppressed > 0 {
                tracing::warn!(plugin = %self.id, suppressed = budget.suppressed, "plugin log lines suppressed by the rate limit");
            }
            *budget = LogBudget { window: Instant::now(), lines: 0, suppressed: 0 };
        }
        let (plugin, event) = (&self.id, &event.id);
        for line in lines {
            if budget.lines >= LOG_LINES_PER_SECOND {
                budget.suppressed += 1;
                continue;
            }
            budget.lines += 1;
            let message = &line.message;
            match line.level {
                LogLevel::Trace => tracing::trace!(%plugin, %event, "{message}"),
                LogLevel::Debug => tracing::debug!(%plugin, %event, "{message}"),
                LogLevel::Info => tracing::info!(%plugin, %event, "{message}"),
                LogLevel::Warn => tracing::warn!(%plugin, %event, "{message}"),
                LogLevel::Error => tracing::error!(%plugin, %event, "{message}"),
            }
        }
        if dropped > 0 {
            tracing::warn!(%plugin, %event, dropped, "plugin log over its per-call budget; lines truncated or dropped");
        }
    }
}
