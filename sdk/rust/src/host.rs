//! The host's log, config and clock: wrappers over the `host` imports.
//!
//! Owns the plugin-facing names of the host functions and the config conventions every plugin
//! shares (a missing required key and an unparsable duration are fatal, with a message naming
//! the key). Every function that reads config, the clock or the log calls the host, so it works
//! only inside a component (natively it panics); [`config_duration_value`] is the pure part.

use std::cell::RefCell;
use std::time::Duration;

use crate::Failure;
use crate::bindings::switchyard::plugin::host as imports;
pub use crate::bindings::switchyard::plugin::host::Level;
use crate::duration::parse_duration;

/// Writes a line to the host's log, tagged with the plugin id and the event id. The host
/// truncates long lines and stops recording a call's lines past 4 KiB in all.
pub fn log(level: Level, message: &str) {
    imports::log(level, message);
}

/// Logs `message` at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Logs `message` at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs `message` at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs `message` at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs `message` at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// The value of `key` in the binding's `config` map, if it has one.
///
/// Each key is asked of the host once per instance and kept: the world fixes a binding's config
/// for the life of an instance, and every ask crosses out of the sandbox and back.
pub fn config(key: &str) -> Option<String> {
    KNOWN_CONFIG.with_borrow_mut(|known| {
        if let Some((_, value)) = known.iter().find(|(known, _)| known == key) {
            return value.clone();
        }
        let value = imports::config(key);
        if known.len() < MAX_KNOWN_CONFIG {
            known.push((key.to_owned(), value.clone()));
        }
        value
    })
}

/// Config keys kept; a plugin that makes up keys as it goes asks the host for the rest.
const MAX_KNOWN_CONFIG: usize = 64;

/// A config key and what the host answered for it.
type KnownValue = (String, Option<String>);

thread_local! {
    /// What the host answered for each key asked so far in this instance.
    static KNOWN_CONFIG: RefCell<Vec<KnownValue>> = const { RefCell::new(Vec::new()) };
}

/// The value of `key` in the binding's `config` map, or a fatal failure naming the key.
///
/// ```no_run
/// use switchyard_sdk::{Failure, host};
///
/// let secret = host::require_config("secret")?;
/// # Ok::<(), Failure>(())
/// ```
pub fn require_config(key: &str) -> Result<String, Failure> {
    config(key).ok_or_else(|| missing_config(key))
}

/// The duration in `key` of the binding's `config` map (`"300s"`, `"5m"`, …), or `default`
/// when the key is absent; a fatal failure when the value does not parse.
pub fn config_duration(key: &str, default: Duration) -> Result<Duration, Failure> {
    config_duration_value(key, config(key).as_deref(), default)
}

/// The current time in unix milliseconds (fixed by test fixtures, so timestamp checks can be
/// tested).
pub fn now_ms() -> u64 {
    imports::now_ms()
}

/// The fatal failure for a required config key that is absent.
pub fn missing_config(key: &str) -> Failure {
    Failure::fatal(format!("missing config key `{key}`: set it in the plugin binding's `config`"))
}

/// [`config_duration`] without the host: `value` is what the config map holds for `key`.
///
/// ```
/// use std::time::Duration;
/// use switchyard_sdk::host::config_duration_value;
///
/// let default = Duration::from_secs(300);
/// assert_eq!(config_duration_value("tolerance", None, default), Ok(default));
/// let ten_seconds = config_duration_value("tolerance", Some("10s"), default);
/// assert_eq!(ten_seconds, Ok(Duration::from_secs(10)));
/// assert!(config_duration_value("tolerance", Some("soon"), default).is_err());
/// ```
pub fn config_duration_value(
    key: &str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, Failure> {
    match value {
        None => Ok(default),
        Some(text) => parse_duration(text)
            .map_err(|error| Failure::fatal(format!("config key `{key}`: {error}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_duration_names_the_key_and_the_expected_form() {
        let failure = config_duration_value("tolerance", Some("5 minutes"), Duration::ZERO);
        let Err(Failure::Fatal(message)) = failure else { panic!("{failure:?}") };
        assert!(message.starts_with("config key `tolerance`: "), "{message}");
        assert!(message.contains("e.g. `5m`"), "{message}");
    }

    #[test]
    fn missing_config_names_the_key() {
        assert_eq!(
            missing_config("secret").message(),
            "missing config key `secret`: set it in the plugin binding's `config`"
        );
    }
}
