//! The plugin stage alone: what one call of a plugin costs, fresh and warm.
//!
//! Drives the router's own runtime (`switchyard::plugin::PluginHost`) in this process, no
//! HTTP and no store, on the event the load generator sends. Fresh calls run on this thread
//! through `call_blocking` (a new instance each time); warm calls go through the runtime's
//! thread pool (`call`) with one thread, so its warm instance is reused. Two times per call:
//! `inside`, the runtime's own measure (instance + call + conversions, on the plugin thread),
//! and, for pool calls, `round trip`, which adds the hop to the plugin thread and back.
//!
//! Warm calls are measured twice. *Back to back*: calls queued in waves, so the plugin thread
//! goes from one straight to the next, as it does whenever a router has more than one event
//! for it; the fresh calls run that way too (a loop on this thread). *After idle*: one call
//! at a time, so the plugin thread parks between calls and each one starts on a core woken
//! for it, its caches cold (on this machine that alone doubles a Rust `pass` call). The
//! first is the plugin's cost, the second adds the machine's wake-up.
//!
//! The first-party Rust plugins are always measured; the benchmarks' own Python and
//! JavaScript transforms (`bench/plugins`, the `redact` job in those languages) when built.
//! Their fresh calls start an interpreter each time (milliseconds), so they get a hundredth of
//! the calls fresh.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use bytes::Bytes;
use serde::Serialize;
use switchyard::config::{Instances, OnError, Plugin, Secret};
use switchyard::event::{Event, EventId, now_millis};
use switchyard::plugin::{CallError, PluginHost, RuntimeOptions};
use switchyard::verdict::{GuestFailure, Verdict};

use crate::body::{Template, default_body_template};
use crate::scenario::{GITHUB_SECRET, REDACT_POINTER};
use crate::signature::github_signature;
use crate::stats::Summary;

/// Calls made before measuring (caches, branch predictors, the pool's first instance).
const WARMUP_CALLS: usize = 500;
/// Calls queued at once for the back-to-back measure; the first of each wave wakes the plugin
/// thread and is not counted.
const WAVE: usize = 8;
/// Fresh calls of an interpreted plugin made before measuring.
const INTERPRETED_FRESH_WARMUP_CALLS: usize = 10;

/// A transform in a language with an interpreter inside its component.
#[derive(Debug, Clone)]
pub struct LanguageTransform {
    /// `Python` or `JavaScript`.
    pub language: &'static str,
    pub path: PathBuf,
}

/// One plugin's figures, in nanoseconds.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStageResult {
    pub plugin: String,
    /// `Rust`, `Python` or `JavaScript`.
    pub language: String,
    /// Warm calls measured.
    pub calls: usize,
    pub fresh_calls: usize,
    pub fresh_inside_ns: Summary,
    /// Warm calls back to back: each starts as the one before it ends, on the same thread.
    pub warm_inside_ns: Summary,
    /// Warm calls one at a time: the plugin thread parked before each.
    pub warm_after_idle_ns: Summary,
    /// The after-idle calls from the caller's side, the hop there and back included.
    pub warm_round_trip_ns: Summary,
}

/// The plugins measured (a do-nothing one, a verifier and a transform in Rust; in other
/// languages the transform, and the same component told to do nothing), with their config and
/// language.
fn plugins(plugins_dir: &Path, languages: &[LanguageTransform]) -> Vec<(Plugin, &'static str)> {
    let plugin = |id: &str, path: PathBuf, config: &[(&str, &str)], secrets: &[&str]| Plugin {
        id: id.into(),
        path,
        secrets: secrets.iter().map(|name| name.to_string()).collect(),
        config: config.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect(),
        timeout: Duration::from_millis(100),
        memory: 64 << 20,
        instances: Instances::Fresh,
        on_error: OnError::FailClosed,
    };
    let rust = |file: &str| plugins_dir.join(file);
    let mut plugins = vec![
        // The test fixture `hostile` without a `mode` answers `pass` and does nothing else: the
        // runtime's own cost per call, the least any plugin stage costs.
        (plugin("pass", rust("hostile.wasm"), &[], &[]), "Rust"),
        (
            plugin(
                "verify-github",
                rust("verify_github.wasm"),
                &[("secret", "github")],
                &["github"],
            ),
            "Rust",
        ),
        (plugin("redact", rust("redact.wasm"), &[("pointers", REDACT_POINTER)], &[]), "Rust"),
    ];
    for transform in languages {
        let language = transform.language.to_lowercase();
        // The same component answering before any work: the interpreter's own cost per call,
        // beside the whole job's.
        let pass = [("mode", "pass"), ("pointers", REDACT_POINTER)];
        let id = format!("pass-{language}");
        plugins.push((plugin(&id, transform.path.clone(), &pass, &[]), transform.language));
        let pointers = [("pointers", REDACT_POINTER)];
        let id = format!("redact-{language}");
        plugins.push((plugin(&id, transform.path.clone(), &pointers, &[]), transform.language));
    }
    plugins
}

/// The event every call gets: the load generator's default body, signed for `verify-github`.
fn event() -> Event {
    let body = Template::parse(&default_body_template()).render(123_456, 1_700_000_000_000_000);
    let signature = github_signature(GITHUB_SECRET.as_bytes(), body.as_bytes());
    Event {
        id: EventId::generate(),
        source: "app".into(),
        event_type: "bench.event".into(),
        subject: None,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("x-github-event".into(), "push".into()),
            ("x-github-delivery".into(), "bench-123456".into()),
            ("x-hub-signature-256".into(), signature),
        ],
        body: Bytes::from(body),
        received_at: now_millis(),
        dedupe_key: None,
        metadata: Vec::new(),
    }
}

/// Measures each first-party Rust plugin `calls` times fresh and `calls` times warm, and each
/// of `languages` `calls` times warm and a hundredth of that fresh. With `only`, just that
/// plugin. Compiled components are kept in `cache_dir` (a Python one takes half a minute).
pub fn run(
    plugins_dir: &Path,
    calls: usize,
    only: Option<&str>,
    languages: &[LanguageTransform],
    cache_dir: &Path,
) -> anyhow::Result<Vec<PluginStageResult>> {
    let secrets: BTreeMap<String, Secret> =
        [("github".to_owned(), Secret::new(GITHUB_SECRET.as_bytes().to_vec()))].into();
    std::fs::create_dir_all(cache_dir)?;
    let event = event();
    let mut results = Vec::new();
    for (plugin, language) in plugins(plugins_dir, languages) {
        if only.is_some_and(|id| id != plugin.id) {
            continue;
        }
        if !plugin.path.is_file() {
            bail!("`{}` is missing: build the plugins first", plugin.path.display());
        }
        let options = |threads| RuntimeOptions {
            cache_dir: Some(cache_dir.to_path_buf()),
            threads,
            count_instructions: false,
            emit_logs: false,
        };
        let (fresh_warmup, fresh_calls) = match language {
            "Rust" => (WARMUP_CALLS, calls),
            _ => (INTERPRETED_FRESH_WARMUP_CALLS, (calls / 100).max(20)),
        };
        let fresh = PluginHost::load(std::slice::from_ref(&plugin), &secrets, &options(0))?;
        let mut fresh_inside = Vec::with_capacity(fresh_calls);
        for index in 0..fresh_warmup + fresh_calls {
            let report = fresh.call_blocking(&plugin.id, &event, None);
            check(&plugin.id, &report.answer)?;
            if index >= fresh_warmup {
                fresh_inside.push(report.elapsed.as_nanos() as u64);
            }
        }
        drop(fresh);

        let warm_plugin = Plugin { instances: Instances::Warm, ..plugin.clone() };
        let warm = Arc::new(PluginHost::load(&[warm_plugin], &secrets, &options(1))?);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (mut after_idle, mut round_trip, mut back_to_back) = runtime.block_on(async {
            let mut after_idle = Vec::with_capacity(calls);
            let mut round_trip = Vec::with_capacity(calls);
            for index in 0..WARMUP_CALLS + calls {
                let started = Instant::now();
                let report = warm.call(&plugin.id, &event).await;
                let elapsed = started.elapsed();
                check(&plugin.id, &report.answer)?;
                if index >= WARMUP_CALLS {
                    after_idle.push(report.elapsed.as_nanos() as u64);
                    round_trip.push(elapsed.as_nanos() as u64);
                }
            }
            let mut back_to_back = Vec::with_capacity(calls);
            while back_to_back.len() < calls {
                // `join_all` polls in order, so the jobs reach the pool's queue in order and
                // its answers come back in the same order.
                let wave = (0..WAVE).map(|_| warm.call(&plugin.id, &event));
                let reports = futures_util::future::join_all(wave).await;
                for report in &reports {
                    check(&plugin.id, &report.answer)?;
                }
                back_to_back
                    .extend(reports[1..].iter().map(|report| report.elapsed.as_nanos() as u64));
            }
            anyhow::Ok((after_idle, round_trip, back_to_back))
        })?;
        results.push(PluginStageResult {
            plugin: plugin.id.clone(),
            language: language.into(),
            calls,
            fresh_calls,
            fresh_inside_ns: Summary::of(&mut fresh_inside),
            warm_inside_ns: Summary::of(&mut back_to_back),
            warm_after_idle_ns: Summary::of(&mut after_idle),
            warm_round_trip_ns: Summary::of(&mut round_trip),
        });
    }
    Ok(results)
}

/// Calls must succeed and let the event through: a rejection would mean the benchmark
/// measured the wrong path.
fn check(
    plugin: &str,
    answer: &Result<Result<Verdict, GuestFailure>, CallError>,
) -> anyhow::Result<()> {
    match answer {
        Ok(Ok(Verdict::Pass | Verdict::Modify(_) | Verdict::Replace(_))) => Ok(()),
        Ok(Ok(verdict)) => bail!("plugin `{plugin}` did not let the event through: {verdict:?}"),
        Ok(Err(failure)) => bail!("plugin `{plugin}` failed: {failure:?}"),
        Err(error) => bail!("plugin `{plugin}`: {error}"),
    }
}
