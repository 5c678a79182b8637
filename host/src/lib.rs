//! Switchyard: a WebAssembly-extensible event router.
//!
//! Webhooks (HTTP) and service events (NATS) come in, are authenticated, filtered and
//! transformed by user plugins, routed by config rules, and delivered, signed and durably, to
//! subscribed endpoints. See `DESIGN.md` for the contract; each module's docs say what it owns.

pub mod admin;
pub mod admin_cli;
pub mod app;
pub mod cli;
pub mod cloudevents;
pub mod config;
pub mod delivery;
pub mod egress;
pub mod event;
pub mod health;
pub mod http_api;
pub mod ingest;
pub mod ingress;
pub mod listener;
pub mod nats;
pub mod notify;
pub mod pipeline;
pub mod plugin;
pub mod plugin_cli;
pub mod reload;
pub mod route_trace;
pub mod routes_cli;
pub mod routing;
pub mod seal;
pub mod shell;
pub mod signing;
pub mod store;
pub mod tail;
pub mod telemetry;
pub mod traces;
pub mod traffic;
pub mod ui;
pub mod verdict;
