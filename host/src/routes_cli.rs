//! `switchyard routes test`: which routes one event matches, what each plugin returns, and
//! what would be delivered where (DESIGN §9).
//!
//! Owns turning the command's arguments into an [`Event`] (an event fixture file, or a source
//! with headers and a body, typed by the same rules as ingest), running the plugins it needs
//! in the sandbox on the calling thread, and rendering the [`Trace`] as text or JSON. The
//! decisions are [`crate::route_trace`]'s. No network, nothing stored: the data dir is not opened
//! and compiled plugins are cached only where `--cache-dir` says.
//!
//! Decisions the design leaves open:
//! - only plugins the event reaches are loaded, so a config naming plugins that are not built
//!   yet can still be tested on the paths that do not need them;
//! - a plugin call gets its configured timeout but at least one second: a cold call from the
//!   command line is slower than a call in a running router, and a trace that times out where
//!   the router would not misleads;
//! - endpoints and routes created through the admin API live in the store and are not part of
//!   the trace: it shows the config file only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;

use crate::config::{SourceKind, Topology};
use crate::event::Event;
use crate::nats::mapping::{self, NatsMessage};
use crate::plugin::{PluginHost, RuntimeOptions};
use crate::plugin_cli::fixtures::EventFixture;
use crate::route_trace::{self as trace, Outcome, PluginAnswer, PluginCaller, Trace};

/// The shortest timeout a plugin gets from the command line.
const MINIMUM_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the event comes from.
#[derive(Debug, Clone, Default)]
pub struct EventArguments {
    /// An event fixture (`*.event.json`).
    pub event: Option<PathBuf>,
    /// The source id; overrides the fixture's.
    pub source: Option<String>,
    /// `name: value` headers, added after the fixture's.
    pub headers: Vec<(String, String)>,
    /// The body: text, or `@path` for a file's bytes.
    pub body: Option<String>,
    /// The NATS subject.
    pub subject: Option<String>,
}

/// Builds the event, traces it through `topology`, and answers the trace.
pub fn run(
    topology: &Topology,
    arguments: &EventArguments,
    cache_dir: Option<&Path>,
) -> anyhow::Result<Trace> {
    let event = build_event(topology, arguments)?;
    Ok(trace_event(topology, event, cache_dir))
}

/// Traces an event already built (a stored one, for the dashboard's route trace), its
/// plugins run in the sandbox on this thread: call it off the async threads.
pub fn trace_event(topology: &Topology, event: Event, cache_dir: Option<&Path>) -> Trace {
    let mut plugins = SandboxPlugins { topology, cache_dir, loaded: HashMap::new() };
    trace::trace(topology, event, &mut plugins)
}

fn build_event(topology: &Topology, arguments: &EventArguments) -> anyhow::Result<Event> {
    let fixture = match &arguments.event {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            serde_json::from_str::<EventFixture>(&text)
                .with_context(|| format!("`{}` is not a valid event file", path.display()))?
        }
        None => EventFixture::default(),
    };
    let source_id = arguments.source.clone().or_else(|| fixture.source.clone()).context(
        "say which source the event comes from: `--source ID`, or `source` in the event file",
    )?;
    // The built-in source of operational events is routed without being declared.
    let builtin = (source_id == crate::notify::SOURCE).then(crate::notify::source);
    let Some(source) = builtin.as_ref().or_else(|| topology.sources.get(&source_id)) else {
        let known: Vec<String> = topology.sources.keys().map(|id| format!("`{id}`")).collect();
        bail!("source `{source_id}` is not in the config; its sources are {}", known.join(", "));
    };
    let declared_type = fixture.event_type.clone();
    let mut fixture = fixture;
    fixture.source = Some(source_id.clone());
    // The type is decided below, once headers and body are known.
    fixture.event_type = Some(String::new());
    if arguments.subject.is_some() {
        fixture.subject = arguments.subject.clone();
    }
    let mut event = fixture.to_event().map_err(|problem| anyhow::anyhow!("event: {problem}"))?;
    for (name, value) in &arguments.headers {
        event.headers.push((name.to_ascii_lowercase(), value.clone()));
    }
    if let Some(body) = &arguments.body {
        event.body = match body.strip_prefix('@') {
            Some(path) => Bytes::from(
                std::fs::read(path)
                    .with_context(|| format!("cannot read `--body` file `{path}`"))?,
            ),
            None => Bytes::from(body.clone()),
        };
    }
    event.event_type = match declared_type {
        Some(declared) => declared,
        None => event_type(source, &event)?,
    };
    Ok(event)
}

/// The type ingest would give `event` from `source`: a NATS message's CloudEvent type, else the
/// source's rule, else (NATS) the subject, else the body's `"type"` or the source id.
fn event_type(source: &crate::config::Source, event: &Event) -> anyhow::Result<String> {
    if let (SourceKind::Nats { .. }, Some(subject)) = (&source.kind, &event.subject) {
        let message = NatsMessage {
            subject: subject.clone(),
            headers: event.headers.clone(),
            payload: event.body.clone(),
        };
        let declared = mapping::declared(&message)
            .with_context(|| format!("source `{}` would refuse the message", source.id))?;
        if let Some(declared) = declared.event_type {
            return Ok(declared);
        }
        if source.event_type.is_none() {
            return Ok(subject.clone());
        }
    }
    crate::ingest::event_type(source.event_type.as_ref(), &source.id, &event.headers, &event.body)
        .with_context(|| format!("source `{}` would refuse the event", source.id))
}

/// Plugins loaded on first use, each in its own runtime, called on this thread.
struct SandboxPlugins<'a> {
    topology: &'a Topology,
    cache_dir: Option<&'a Path>,
    loaded: HashMap<String, Result<PluginHost, String>>,
}

impl PluginCaller for SandboxPlugins<'_> {
    fn call(&mut self, plugin: &str, event: &Event) -> PluginAnswer {
        let (topology, cache_dir) = (self.topology, self.cache_dir);
        let host = self.loaded.entry(plugin.to_owned()).or_insert_with(|| {
            let Some(binding) = topology.plugins.get(plugin) else {
                return Err(format!("plugin `{plugin}` is not in the config"));
            };
            let mut binding = binding.clone();
            binding.timeout = binding.timeout.max(MINIMUM_TIMEOUT);
            let options = RuntimeOptions {
                cache_dir: cache_dir.map(Path::to_path_buf),
                threads: 0,
                count_instructions: false,
                emit_logs: false,
            };
            PluginHost::load(&[binding], &topology.secrets, &options)
                .map_err(|error| error.to_string())
        });
        match host {
            Ok(host) => {
                host.call_blocking(plugin, event, None).answer.map_err(|error| error.to_string())
            }
            Err(error) => Err(error.clone()),
        }
    }
}

/// The trace as JSON, for machines.
pub fn render_json(trace: &Trace) -> String {
    serde_json::to_string_pretty(trace).expect("a trace serializes") + "\n"
}

/// The trace as text, for people.
pub fn render_text(trace: &Trace) -> String {
    let mut out = String::new();
    let event = &trace.event;
    let subject = event
        .subject
        .as_deref()
        .map_or("no subject".to_owned(), |subject| format!("subject `{subject}`"));
    let _ = writeln!(
        out,
        "event `{}` from source `{}`, type `{}`, {subject}",
        event.id, event.source, event.event_type
    );
    if !trace.verify.is_empty() {
        let _ = writeln!(out, "\nverify");
        for step in &trace.verify {
            let _ = writeln!(out, "  {}: {}", step.plugin, step.verdict);
        }
    }
    match &trace.outcome {
        Outcome::Accepted => {}
        Outcome::Dropped { plugin } => {
            let _ = writeln!(out, "\ndropped by `{plugin}`: answered 202, nothing stored");
        }
        Outcome::Rejected { plugin, status, code, message } => {
            let _ = writeln!(
                out,
                "\nrejected by `{plugin}`: answered {status} `{code}` ({message}), nothing stored"
            );
        }
        Outcome::Retry { plugin, reason } => {
            let _ = writeln!(
                out,
                "\nretry asked because of `{plugin}`: answered 503, nothing stored\n  {reason}"
            );
        }
    }
    if trace.outcome == Outcome::Accepted {
        let _ = writeln!(out, "\nroutes");
        if trace.routes.is_empty() {
            let _ = writeln!(out, "  none: the config has no routes");
        }
    }
    for route in &trace.routes {
        let verdict = if route.matched { "matched" } else { "no match" };
        let _ = writeln!(out, "  {}: {verdict}", route.route);
        if route.checks.is_empty() {
            let _ = writeln!(out, "    every event (no criteria)");
        }
        for check in &route.checks {
            let mark = if check.passed { "yes" } else { "no " };
            let _ = writeln!(out, "    {mark} {}: {}", check.criterion, check.detail);
        }
        for step in &route.plugins {
            let role = if step.stage == "endpoint" { "endpoint transform" } else { "plugin" };
            let _ = writeln!(out, "    {role} {}: {}", step.plugin, step.verdict);
        }
        if route.matched {
            let endpoints: Vec<String> =
                route.endpoints.iter().map(|id| format!("`{id}`")).collect();
            let _ = writeln!(out, "    to {}", endpoints.join(", "));
        }
    }
    if trace.outcome == Outcome::Accepted {
        match trace.deliveries.len() {
            0 => {
                let _ = writeln!(out, "\nno deliveries");
            }
            count => {
                let noun = if count == 1 { "delivery" } else { "deliveries" };
                let _ = writeln!(out, "\n{count} {noun}");
            }
        }
    }
    for delivery in &trace.deliveries {
        let _ = writeln!(
            out,
            "  {} (route `{}`, event `{}`)",
            delivery.endpoint, delivery.route, delivery.event
        );
        if let Some(reason) = &delivery.dead_letter {
            let _ = writeln!(out, "    stored as a dead letter: {reason}");
        }
        if let Some(subject) = &delivery.subject {
            let _ = writeln!(out, "    subject: {subject}");
        }
        let content_type = delivery.content_type.as_deref().unwrap_or("application/json");
        let _ = writeln!(out, "    content-type: {content_type}");
        match (&delivery.body, &delivery.body_base64) {
            (Some(text), _) => {
                for line in text.lines() {
                    let _ = writeln!(out, "    | {line}");
                }
            }
            (None, Some(encoded)) => {
                let _ = writeln!(out, "    base64: {encoded}");
            }
            (None, None) => {}
        }
    }
    out
}
