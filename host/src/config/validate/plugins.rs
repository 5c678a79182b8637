//! `[plugins.<id>]`: the module file, its secrets and its limits.

use std::time::Duration;

use super::{Ids, Validator};
use crate::config::raw;
use crate::config::topology::*;

const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_millis(100);
const DEFAULT_PLUGIN_MEMORY: u64 = 64 << 20;

impl Validator<'_> {
    pub(super) fn plugin(&mut self, id: &str, plugin: raw::PluginConfig, ids: &Ids) -> Plugin {
        let at = |key: &str| format!("plugins.{id}.{key}");
        let path = self.resolve_path(&plugin.path);
        if !self.environment.is_file(&path) {
            self.error(
                at("path"),
                format!("no file at `{}` (build the plugin first)", plugin.path),
                "path = \"plugins/target/wasm32-wasip2/release/verify_github.wasm\"",
            );
        }
        self.references(&at("secrets"), &plugin.secrets, &ids.secrets, "secret");
        let instances = match plugin.instances.as_deref() {
            None | Some("fresh") => Instances::Fresh,
            Some("warm") => Instances::Warm,
            Some(other) => {
                self.error(
                    at("instances"),
                    format!("`{other}` is not an instance mode; expected `fresh` or `warm`"),
                    "instances = \"fresh\"",
                );
                Instances::Fresh
            }
        };
        let on_error = match plugin.on_error.as_deref() {
            None | Some("fail-closed") => OnError::FailClosed,
            Some("fail-open") => OnError::FailOpen,
            Some("dead-letter") => OnError::DeadLetter,
            Some(other) => {
                self.error(
                    at("on_error"),
                    format!(
                        "`{other}` is not an error policy; expected `fail-closed`, `fail-open` \
                         or `dead-letter`"
                    ),
                    "on_error = \"fail-closed\"",
                );
                OnError::FailClosed
            }
        };
        Plugin {
            id: id.to_owned(),
            path,
            secrets: plugin.secrets,
            config: plugin.config,
            timeout: self.duration(
                &at("timeout"),
                plugin.timeout.as_deref(),
                DEFAULT_PLUGIN_TIMEOUT,
            ),
            memory: self.size(&at("memory"), plugin.memory.as_deref(), DEFAULT_PLUGIN_MEMORY),
            instances,
            on_error,
        }
    }
}
