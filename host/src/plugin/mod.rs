//! The plugin runtime: user-supplied WebAssembly components, run safely on every event.
//!
//! The only module that names wasmtime. [`PluginHost`] loads every configured plugin at start
//! (compiled once, cached as `.cwasm`, linked against the world so a component importing
//! anything else is refused at load, not at the first event) and runs calls on a bounded pool
//! of dedicated threads, each call with a wall-clock deadline, a memory cap and a log budget.
//! It answers [`CallReport`]s in host terms ([`crate::verdict`]); what a verdict means for an
//! event is the pipeline's business, not this module's.

mod bindings;
mod cache;
pub mod call_times;
mod engine;
mod instance;
mod pool;
mod state;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

pub use instance::{WARM_MAX_AGE, WARM_MAX_CALLS};
pub use state::{LogLine, MAX_LOG_BYTES_PER_CALL};

use crate::config::{Plugin, Secret};
use crate::event::Event;
use crate::verdict::{GuestFailure, Verdict};

/// Where plugins' compiled artifacts are cached, inside the data directory.
pub const CACHE_DIRECTORY: &str = "plugin-cache";
/// Calls waiting for a plugin thread beyond this are refused (backpressure).
const QUEUE_CAPACITY: usize = 1024;

/// A plugin log line's level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Trace => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Why the runtime or a plugin could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("plugin `{plugin}` (`{path}`): {reason}")]
    Load { plugin: String, path: PathBuf, reason: String },
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
}

/// Why a call gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("every plugin thread is busy")]
    Busy,
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("exceeded its memory limit of {0} bytes")]
    MemoryLimit(u64),
    #[error("trapped: {0}")]
    Trap(String),
    #[error("no plugin `{0}` is loaded")]
    Unknown(String),
    #[error("the plugin runtime is stopped")]
    Stopped,
}

/// What one call did.
#[derive(Debug, Clone)]
pub struct CallReport {
    /// The guest's answer, or why there is none.
    pub answer: Result<Result<Verdict, GuestFailure>, CallError>,
    /// What it logged (stdout and stderr included), within the per-call budget.
    pub log: Vec<LogLine>,
    /// Lines, or ends of lines, past the budget.
    pub dropped_log_lines: usize,
    /// Wall time, instantiation included.
    pub elapsed: Duration,
    /// Instructions executed (fuel consumed), when counting was on.
    pub instructions: Option<u64>,
    /// The largest size its linear memory reached, in bytes.
    pub peak_memory: u64,
}

impl CallReport {
    fn failed(error: CallError, elapsed: Duration) -> Self {
        Self {
            answer: Err(error),
            log: Vec::new(),
            dropped_log_lines: 0,
            elapsed,
            instructions: None,
            peak_memory: 0,
        }
    }
}

/// How the runtime is set up.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles on every start.
    pub cache_dir: Option<PathBuf>,
    /// Dedicated threads for calls.
    pub threads: usize,
    /// Count instructions (slower; for `switchyard plugin run`).
    pub count_instructions: bool,
    /// Send plugin logs to the host's log.
    pub emit_logs: bool,
}

impl RuntimeOptions {
    /// For the router: cache in the data dir, one thread per core, logs to the host log.
    pub fn serving(data_dir: &std::path::Path) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, usize::from).max(2);
        Self {
            cache_dir: Some(data_dir.join(CACHE_DIRECTORY)),
            threads,
            count_instructions: false,
            emit_logs: true,
        }
    }
}

/// Every loaded plugin and the threads that run them.
pub struct PluginHost {
    engine: wasmtime::Engine,
    plugins: HashMap<String, Arc<instance::LoadedPlugin>>,
    settings: instance::CallSettings,
    pool: Option<pool::CallPool>,
    pooled_allocator: bool,
    // Dropped last: calls still running need their deadlines to advance.
    _ticker: engine::EpochTicker,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.plugins.keys().collect();
        ids.sort();
        formatter.debug_struct("PluginHost").field("plugins", &ids).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// Compiles (or loads from the cache) and links every plugin; the first that cannot be
    /// loaded is the error. `secrets` are all configured secrets; each plugin may use the
    /// ones it lists. With `threads == 0` no pool is started: only [`Self::call_blocking`]
    /// works (the CLI's way).
    pub fn load(
        plugins: &[Plugin],
        secrets: &BTreeMap<String, Secret>,
        options: &RuntimeOptions,
    ) -> Result<Self, PluginError> {
        let max_memory = plugins.iter().map(|plugin| plugin.memory).max().unwrap_or(1 << 20);
        let max_instances = u32::try_from((options.threads.max(1) + 1) * (plugins.len() + 1) * 2)
            .unwrap_or(u32::MAX)
            .max(64);
        let (engine, pooled_allocator) = engine::build(engine::EngineOptions {
            max_memory,
            fuel: options.count_instructions,
            max_instances,
        })
        .map_err(PluginError::Runtime)?;
        let linker = instance::linker(&engine)
            .map_err(|error| PluginError::Runtime(format!("{error:#}")))?;
        let known_secrets: BTreeSet<String> = secrets.keys().cloned().collect();
        let mut loaded = HashMap::new();
        for plugin in plugins {
            let load_error = |reason: String| PluginError::Load {
                plugin: plugin.id.clone(),
                path: plugin.path.clone(),
                reason,
            };
            let component = cache::load(&engine, &plugin.path, options.cache_dir.as_deref())
                .map_err(load_error)?;
            let pre = linker
                .instantiate_pre(&component)
                .and_then(bindings::EntryPre::new)
                .map_err(|error| {
                    load_error(format!("does not fit a `switchyard:plugin` world: {error:#}"))
                })?;
            let binding = state::Binding {
                id: plugin.id.clone(),
                config: plugin.config.clone(),
                secrets: plugin
                    .secrets
                    .iter()
                    .filter_map(|name| Some((name.clone(), secrets.get(name)?.clone())))
                    .collect(),
                known_secrets: known_secrets.clone(),
            };
            let runtime = instance::LoadedPlugin::new(
                plugin.id.clone(),
                pre,
                Arc::new(binding),
                plugin.timeout,
                plugin.memory,
                plugin.instances,
            );
            loaded.insert(plugin.id.clone(), Arc::new(runtime));
        }
        cache::give_back_freed_memory();
        let ticker = engine::EpochTicker::start(engine.clone()).map_err(|error| {
            PluginError::Runtime(format!("cannot start the epoch ticker: {error}"))
        })?;
        let pool = (options.threads > 0)
            .then(|| pool::CallPool::start(options.threads, QUEUE_CAPACITY))
            .transpose()
            .map_err(|error| {
                PluginError::Runtime(format!("cannot start plugin threads: {error}"))
            })?;
        let settings = instance::CallSettings {
            fuel: options.count_instructions,
            emit_logs: options.emit_logs,
        };
        Ok(Self { engine, plugins: loaded, settings, pool, pooled_allocator, _ticker: ticker })
    }

    /// Whether instances come from the pooling allocator (else on demand).
    pub fn pooled_allocator(&self) -> bool {
        self.pooled_allocator
    }

    /// Runs `plugin` on `event` on a plugin thread; a full queue is [`CallError::Busy`] at
    /// once.
    pub async fn call(&self, plugin: &str, event: &Event) -> CallReport {
        let Some(loaded) = self.plugins.get(plugin).cloned() else {
            return CallReport::failed(CallError::Unknown(plugin.to_owned()), Duration::ZERO);
        };
        let Some(pool) = &self.pool else {
            return CallReport::failed(CallError::Stopped, Duration::ZERO);
        };
        let (reply, answer) = oneshot::channel();
        let (engine, event, settings) = (self.engine.clone(), event.clone(), self.settings);
        let job: pool::Job = Box::new(move |warm| {
            let _ = reply.send(loaded.call(&engine, &event, None, warm, settings));
        });
        match pool.submit(job) {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| CallReport::failed(CallError::Stopped, Duration::ZERO)),
            Err(pool::Refused::Full) => CallReport::failed(CallError::Busy, Duration::ZERO),
            Err(pool::Refused::Stopped) => CallReport::failed(CallError::Stopped, Duration::ZERO),
        }
    }

    /// Runs `plugin` on `event` on the calling thread, in a fresh instance, with `now-ms`
    /// answering `now_override` when given (fixtures with timestamps).
    pub fn call_blocking(
        &self,
        plugin: &str,
        event: &Event,
        now_override: Option<u64>,
    ) -> CallReport {
        let Some(loaded) = self.plugins.get(plugin) else {
            return CallReport::failed(CallError::Unknown(plugin.to_owned()), Duration::ZERO);
        };
        let mut warm = instance::WarmInstances::default();
        loaded.call(&self.engine, event, now_override, &mut warm, self.settings)
    }
}
