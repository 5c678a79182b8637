//! Write Switchyard plugins in Rust.
//!
//! A Switchyard plugin is a WebAssembly component exporting one function that takes an [`Event`]
//! and answers a [`Verdict`] or a [`Failure`] (`sdk/wit/switchyard.wit`, whose comments say what
//! the host does with each answer). This crate builds the `packed-plugin` world, whose
//! `handle-packed` takes the event packed into two blocks ([`packed`]): the same verdicts as
//! `handle`, for a fraction of the crossings into the sandbox. It owns the bindings, one
//! attribute macro per kind of plugin that writes the export for you, and the small helpers
//! plugins keep needing (headers, JSON bodies, patches, rejections, hex and base64, durations,
//! the host's log, config, clock and crypto). It must not grow anything a plugin could use to
//! reach outside its sandbox.
//!
//! Put exactly one of these attributes on one function of your crate:
//!
//! | attribute | your function | what the host sees |
//! |---|---|---|
//! | [`filter`] | `fn(&Event) -> bool` | `pass` for `true`, `drop` for `false` |
//! | [`transform`] | `fn(Event) -> Result<Event, Failure>` | `pass`, `modify` or `replace` |
//! | [`verify`] | `fn(&Event) -> Result<Verification, Failure>` | `pass`, `modify` or `reject` |
//! | [`plugin`] | `fn(Event) -> Result<Verdict, Failure>` | exactly what you return |
//!
//! A transform's answer is the smallest verdict describing the change
//! ([`Verdict::from_change`]); a verifier's accept with a dedupe key is a `modify` setting
//! [`DEDUPE_KEY`]. Each function may return its value bare or in a `Result<_, E>` where
//! `E: Into<Failure>`.
//! A second attribute in the same crate fails to build (two `handle-packed` exports).
//!
//! ```rust,standalone_crate
//! use switchyard_sdk::{Event, host};
//!
//! /// Lets through only events whose type starts with the configured prefix.
//! #[switchyard_sdk::filter]
//! fn by_type_prefix(event: &Event) -> bool {
//!     let prefix = host::config("prefix").unwrap_or_default();
//!     event.type_.starts_with(&prefix)
//! }
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (a `cdylib` crate); the component
//! lands in `target/wasm32-wasip2/release/<crate_name>.wasm`. Test it against golden fixtures
//! with `switchyard plugin test <file>.wasm fixtures/`.
//!
//! The functions of [`host`] and [`crypto`] call the host, so they only work inside a component;
//! everything else is plain Rust and works in native unit tests, including [`entry`], which runs
//! the same glue as the macros so a test can check the verdict the host will see.

#![deny(missing_docs)]
#![deny(unsafe_code)]

/// The raw bindings that `wit-bindgen` generates for the `switchyard:plugin/packed-plugin` world.
///
/// Prefer the re-exports at the crate root; this module is public because the attribute macros
/// expand to code in your crate that names it.
#[allow(missing_docs, unsafe_code, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "packed-plugin",
        pub_export_macro: true,
        default_bindings_module: "::switchyard_sdk::bindings",
        additional_derives: [PartialEq, Eq],
        additional_type_attributes: {
            "switchyard:plugin/types@0.1.0/patch": [#[derive(Default)]],
        },
    });
}

pub mod crypto;
pub mod duration;
pub mod encoding;
pub mod entry;
mod event;
pub mod host;
pub mod packed;
mod verdict;

pub use bindings::switchyard::plugin::types::{Event, Patch, Rejection};
pub use bindings::{Failure, Verdict};
pub use verdict::Verification;

/// The JSON library the body helpers use, re-exported so plugins name the same version.
pub use serde_json;

/// Marks the function that decides whether an event goes on: `true` is `pass`, `false` is `drop`.
///
/// The function takes `&Event` and returns `bool` or `Result<bool, E>` with `E: Into<Failure>`.
///
/// ```rust,standalone_crate
/// use switchyard_sdk::{Event, Failure};
///
/// #[switchyard_sdk::filter]
/// fn only_main_branch(event: &Event) -> Result<bool, Failure> {
///     let body: switchyard_sdk::serde_json::Value = event.body_json()?;
///     Ok(body["ref"] == "refs/heads/main")
/// }
/// ```
pub use switchyard_sdk_macros::filter;

/// Marks the function that reshapes an event: it gets the event and returns the new one.
///
/// The function takes `Event` and returns `Event` or `Result<Event, E>` with `E: Into<Failure>`.
/// The host is answered with the smallest verdict that describes the change:
/// [`Verdict::from_change`] says which.
///
/// ```rust,standalone_crate
/// use switchyard_sdk::{Event, Failure};
///
/// #[switchyard_sdk::transform]
/// fn tag_tenant(mut event: Event) -> Result<Event, Failure> {
///     event.set_header("x-tenant", "acme");
///     Ok(event)
/// }
/// ```
pub use switchyard_sdk_macros::transform;

/// Marks the function that authenticates an event in a source's verify stage.
///
/// The function takes `&Event` and returns [`Verification`] or `Result<Verification, E>` with
/// `E: Into<Failure>`. Accepting answers `pass`, or `modify` setting the metadata key
/// [`DEDUPE_KEY`] when the verification carries a dedupe key; rejecting answers `reject`.
///
/// ```rust,standalone_crate
/// use switchyard_sdk::{Event, Failure, Rejection, Verification};
///
/// #[switchyard_sdk::verify]
/// fn has_token(event: &Event) -> Result<Verification, Failure> {
///     match event.header("x-token") {
///         Some(_) => Ok(Verification::accept()),
///         None => Ok(Rejection::missing_signature("missing `x-token` header").into()),
///     }
/// }
/// ```
pub use switchyard_sdk_macros::verify;

/// Marks the function that answers any verdict: full control over the export.
///
/// The function takes `Event` and returns [`Verdict`] or `Result<Verdict, E>` with
/// `E: Into<Failure>`.
///
/// ```rust,standalone_crate
/// use switchyard_sdk::{Event, Failure, Verdict};
///
/// /// Splits a JSON array body into one event per element.
/// #[switchyard_sdk::plugin]
/// fn split_batch(event: Event) -> Result<Verdict, Failure> {
///     let items: Vec<switchyard_sdk::serde_json::Value> = event.body_json()?;
///     let mut events = Vec::with_capacity(items.len());
///     for item in &items {
///         let mut part = event.clone();
///         part.set_body_json(item)?;
///         events.push(part);
///     }
///     Ok(Verdict::Split(events))
/// }
/// ```
pub use switchyard_sdk_macros::plugin;

/// The metadata key a verify plugin sets to give the event a dedupe key (for example the
/// provider's delivery id): a second event with the same key within the source's dedupe window
/// is answered as a duplicate and not stored again.
pub const DEDUPE_KEY: &str = "dedupe-key";
