//! `[server]`, `[egress]` and `[nats]`: listen address, storage, tokens, the egress policy
//! and the NATS connection.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::Validator;
use crate::config::Secret;
use crate::config::raw;
use crate::config::topology::*;
use crate::config::values::parse_size;
use crate::egress::{EgressPolicy, EgressProxy};
use crate::seal::StoreKey;

/// Parses a byte rate such as `1KiB/s` or `512/s`; `0/s` turns the rate check off.
fn parse_rate(text: &str) -> Result<u64, String> {
    let expected = || format!("`{text}` is not a rate; expected a size per second, e.g. `1KiB/s`");
    let size = text.trim().strip_suffix("/s").ok_or_else(expected)?;
    parse_size(size).map_err(|_| expected())
}

impl Validator<'_> {
    pub(super) fn server(&mut self, server: raw::ServerConfig) -> Server {
        let default_listen = SocketAddr::from(([127, 0, 0, 1], 8080));
        let listen = match server.listen.as_deref() {
            None => default_listen,
            Some(text) => text.parse().unwrap_or_else(|_| {
                self.error(
                    "server.listen",
                    format!("`{text}` is not an IP address and port"),
                    "listen = \"127.0.0.1:8080\"",
                );
                default_listen
            }),
        };
        let admin_listen = server.admin_listen.as_deref().and_then(|text| {
            match text.parse::<SocketAddr>() {
                Err(_) => self.error(
                    "server.admin_listen",
                    format!("`{text}` is not an IP address and port"),
                    "admin_listen = \"127.0.0.1:8081\"",
                ),
                // Port 0 (any free port) twice is two different addresses.
                Ok(address) if address == listen && address.port() != 0 => self.error(
                    "server.admin_listen",
                    format!("`{text}` is `server.listen` too; give the admin API its own port"),
                    "admin_listen = \"127.0.0.1:8081\"",
                ),
                Ok(address) => return Some(address),
            }
            None
        });
        let durability = match server.durability.as_deref() {
            None | Some("fsync") => Durability::Fsync,
            Some("os") => Durability::Os,
            Some(other) => {
                self.error(
                    "server.durability",
                    format!("`{other}` is not a durability level; expected `fsync` or `os`"),
                    "durability = \"fsync\"",
                );
                Durability::Fsync
            }
        };
        let admin_token =
            server.admin_token.and_then(|token| self.secret("server.admin_token", token));
        let viewer_token =
            server.viewer_token.and_then(|token| self.secret("server.viewer_token", token));
        if viewer_token.is_some() && admin_token.is_none() {
            self.error(
                "server.viewer_token",
                "a viewer token needs `server.admin_token`: without it the admin API and the \
                 dashboard are off",
                "admin_token = { env = \"SWITCHYARD_ADMIN_TOKEN\" }",
            );
        }
        if let (Some(viewer), Some(admin)) = (&viewer_token, &admin_token)
            && viewer == admin
        {
            self.error(
                "server.viewer_token",
                "the viewer token must differ from `server.admin_token`",
                "viewer_token = { env = \"SWITCHYARD_VIEWER_TOKEN\" }",
            );
        }
        let publish_token =
            server.publish_token.and_then(|token| self.secret("server.publish_token", token));
        Server {
            listen,
            admin_listen,
            data_dir: self.resolve_path(server.data_dir.as_deref().unwrap_or("switchyard-data")),
            durability,
            retention: self.duration(
                "server.retention",
                server.retention.as_deref(),
                DEFAULT_RETENTION,
            ),
            audit_retention: self.duration(
                "server.audit_retention",
                server.audit_retention.as_deref(),
                DEFAULT_AUDIT_RETENTION,
            ),
            verify_endpoints: server.verify_endpoints.unwrap_or(false),
            verify_timeout: self.duration(
                "server.verify_timeout",
                server.verify_timeout.as_deref(),
                DEFAULT_VERIFY_TIMEOUT,
            ),
            notify_every: self.duration(
                "server.notify_every",
                server.notify_every.as_deref(),
                crate::notify::DEFAULT_NOTIFY_EVERY,
            ),
            admin_token,
            viewer_token,
            publish_token,
            max_body: self.size("server.max_body", server.max_body.as_deref(), DEFAULT_MAX_BODY),
            limits: self.limits(server.limits.unwrap_or_default()),
            tls: server.tls.map(|tls| self.tls(tls)),
            trusted_proxies: self.networks(
                "server.trusted_proxies",
                &server.trusted_proxies,
                "trusted_proxies = [\"10.0.0.0/8\"]",
            ),
            // Named by `server.store_key`, resolved once `[secrets]` is read: see `store_key`.
            store_key: None,
        }
    }

    /// `[store]`; `has_nats` and `durability` are what the JetStream backend depends on.
    pub(super) fn store(
        &mut self,
        store: raw::StoreConfig,
        has_nats: bool,
        durability: Durability,
    ) -> StoreSettings {
        let jetstream = match store.backend.as_deref() {
            None | Some("sqlite") => false,
            Some("jetstream") => true,
            Some(other) => {
                self.error(
                    "store.backend",
                    format!("`{other}` is not a store backend; expected `sqlite` or `jetstream`"),
                    "backend = \"jetstream\"",
                );
                false
            }
        };
        let replicas = match store.replicas {
            None => DEFAULT_STORE_REPLICAS,
            Some(replicas @ 1..=5) => replicas as usize,
            Some(other) => {
                self.error(
                    "store.replicas",
                    format!("`{other}` replicas: JetStream keeps 1 to 5 copies"),
                    "replicas = 3",
                );
                DEFAULT_STORE_REPLICAS
            }
        };
        let prefix = store.prefix.unwrap_or_else(|| DEFAULT_STORE_PREFIX.to_owned());
        let prefix_ok = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_');
        if !prefix_ok {
            self.error(
                "store.prefix",
                format!(
                    "`{prefix}` cannot start stream names: use 1 to 32 letters, digits and `_`"
                ),
                "prefix = \"switchyard\"",
            );
        }
        let mut monitor_urls = Vec::new();
        for (index, text) in store.monitor_urls.iter().enumerate() {
            match url::Url::parse(text) {
                Ok(url) if matches!(url.scheme(), "http" | "https") => monitor_urls.push(url),
                _ => self.error(
                    format!("store.monitor_urls[{index}]"),
                    format!("`{text}` is not an http:// or https:// URL"),
                    "monitor_urls = [\"http://127.0.0.1:8222\"]",
                ),
            }
        }
        let snapshot_every = self.duration(
            "store.snapshot_every",
            store.snapshot_every.as_deref(),
            DEFAULT_SNAPSHOT_EVERY,
        );
        if snapshot_every < Duration::from_secs(1) {
            self.error(
                "store.snapshot_every",
                format!("`{snapshot_every:?}` is too often: snapshots are at least `1s` apart"),
                "snapshot_every = \"10m\"",
            );
        }
        let snapshot_entries = match store.snapshot_entries {
            None => DEFAULT_SNAPSHOT_ENTRIES,
            Some(entries @ 1..) => entries as u64,
            Some(other) => {
                self.error(
                    "store.snapshot_entries",
                    format!("`{other}` entries: must be at least 1"),
                    "snapshot_entries = 100000",
                );
                DEFAULT_SNAPSHOT_ENTRIES
            }
        };
        if !jetstream {
            for (key, set) in [
                ("store.replicas", store.replicas.is_some()),
                ("store.monitor_urls", !store.monitor_urls.is_empty()),
                ("store.snapshot_every", store.snapshot_every.is_some()),
                ("store.snapshot_entries", store.snapshot_entries.is_some()),
            ] {
                if set {
                    self.error(
                        key,
                        "only the `jetstream` backend uses it",
                        "backend = \"jetstream\"",
                    );
                }
            }
            return StoreSettings::Sqlite;
        }
        if !has_nats {
            self.error(
                "store.backend",
                "the `jetstream` backend needs a `[nats]` section naming the cluster's servers",
                "[nats]\nurls = [\"nats://10.0.0.1:4222\", \"nats://10.0.0.2:4222\"]",
            );
        }
        if durability == Durability::Fsync && store.monitor_urls.is_empty() {
            self.error(
                "store.monitor_urls",
                "`server.durability = \"fsync\"` with the `jetstream` backend needs the servers' \
                 monitoring URLs, to check at start that each one runs `sync_interval: always`; \
                 or set `server.durability = \"os\"` to accept the servers' own setting",
                "monitor_urls = [\"http://10.0.0.1:8222\", \"http://10.0.0.2:8222\"]",
            );
        }
        StoreSettings::JetStream(JetStreamStore {
            replicas,
            prefix,
            monitor_urls,
            snapshot_every,
            snapshot_entries,
        })
    }

    /// The store key `server.store_key` names: a `[secrets]` entry holding 32 bytes in base64.
    pub(super) fn store_key(
        &mut self,
        name: Option<String>,
        ids: &[String],
        secrets: &BTreeMap<String, Secret>,
    ) -> Option<StoreKey> {
        let example = "store_key = \"store-key\"";
        // Without one, the start warns (where it knows whether dynamic endpoints exist).
        let name = name?;
        if !ids.contains(&name) {
            self.references("server.store_key", std::slice::from_ref(&name), ids, "secret");
            return None;
        }
        // A secret that could not be read has its own error already.
        let secret = secrets.get(&name)?;
        match StoreKey::from_secret(&name, secret) {
            Ok(key) => Some(key),
            Err(error) => {
                self.error("server.store_key", error.to_string(), example);
                None
            }
        }
    }

    fn tls(&mut self, tls: raw::TlsConfig) -> Tls {
        let file = |validator: &mut Self, key: &str, relative: &str| {
            let path = validator.resolve_path(relative);
            if !validator.environment.is_file(&path) {
                validator.error(
                    format!("server.tls.{key}"),
                    format!("`{relative}` is not a file"),
                    &format!("{key} = \"{key}.pem\""),
                );
            }
            path
        };
        let cert = file(self, "cert", &tls.cert);
        let key = file(self, "key", &tls.key);
        let client_ca = tls.client_ca.as_deref().map(|relative| file(self, "client_ca", relative));
        let client_auth = match (tls.client_auth.as_deref(), &client_ca) {
            (None | Some("optional"), _) => ClientAuth::Optional,
            (Some("required"), Some(_)) => ClientAuth::Required,
            (Some("required"), None) => {
                self.error(
                    "server.tls.client_auth",
                    "`required` needs `client_ca`, the CAs client certificates chain to",
                    "client_ca = \"ca.pem\"",
                );
                ClientAuth::Required
            }
            (Some(other), _) => {
                self.error(
                    "server.tls.client_auth",
                    format!(
                        "`{other}` is not a client auth mode; expected `optional` or `required`"
                    ),
                    "client_auth = \"required\"",
                );
                ClientAuth::Optional
            }
        };
        Tls { cert, key, client_ca, client_auth }
    }

    fn limits(&mut self, limits: raw::LimitsConfig) -> Limits {
        let defaults = Limits::default();
        let example = "limits = { connections = 10000, header_timeout = \"10s\" }";
        let count = |validator: &mut Self, key: &str, value: Option<i64>, max: i64| match value {
            None => None,
            Some(value) if (1..=max).contains(&value) => Some(value),
            Some(value) => {
                validator.error(
                    format!("server.limits.{key}"),
                    format!("`{value}` is out of range; expected 1 to {max}"),
                    example,
                );
                None
            }
        };
        let connections = count(self, "connections", limits.connections, 1_000_000);
        let http2_streams = count(self, "http2_streams", limits.http2_streams, 10_000);
        let positive = |validator: &mut Self, key: &str, text: Option<&str>, default| {
            let path = format!("server.limits.{key}");
            let duration = validator.duration(&path, text, default);
            if duration.is_zero() {
                validator.error(path, "must be longer than zero", &format!("{key} = \"10s\""));
                return default;
            }
            duration
        };
        let header_timeout = positive(
            self,
            "header_timeout",
            limits.header_timeout.as_deref(),
            defaults.header_timeout,
        );
        let body_timeout =
            positive(self, "body_timeout", limits.body_timeout.as_deref(), defaults.body_timeout);
        let min_body_rate = match limits.min_body_rate.as_deref() {
            None => defaults.min_body_rate,
            Some(text) => parse_rate(text).unwrap_or_else(|message| {
                self.error("server.limits.min_body_rate", message, "min_body_rate = \"1KiB/s\"");
                defaults.min_body_rate
            }),
        };
        Limits {
            connections: connections.map_or(defaults.connections, |value| value as usize),
            header_timeout,
            body_timeout,
            min_body_rate,
            http2_streams: http2_streams.map_or(defaults.http2_streams, |value| value as u32),
        }
    }

    /// Networks in CIDR notation (a bare address is a network of one).
    fn networks(&mut self, path: &str, texts: &[String], example: &str) -> Vec<IpNet> {
        let mut networks = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            let parsed = text
                .parse::<IpNet>()
                .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                .map(|network| network.trunc());
            match parsed {
                Ok(network) => networks.push(network),
                Err(_) => self.error(
                    format!("{path}[{index}]"),
                    format!("`{text}` is not a network in CIDR notation"),
                    example,
                ),
            }
        }
        networks
    }

    pub(super) fn egress(&mut self, egress: raw::EgressConfig) -> EgressPolicy {
        let allow_networks = self.networks(
            "egress.allow_networks",
            &egress.allow_networks,
            "allow_networks = [\"127.0.0.0/8\"]",
        );
        if egress.proxy.is_none() && !egress.no_proxy.is_empty() {
            self.error(
                "egress.no_proxy",
                "`no_proxy` lists targets that bypass `proxy`, and there is no `proxy`",
                "proxy = \"http://proxy.internal:3128\"",
            );
        }
        let proxy = egress.proxy.and_then(|text| self.egress_proxy(&text, egress.no_proxy));
        EgressPolicy { allow_networks, https_only: egress.https_only, proxy }
    }

    /// `egress.proxy`: an `http://host:port` URL, without credentials or a path; and
    /// `egress.no_proxy`, the targets that bypass it.
    fn egress_proxy(&mut self, text: &str, no_proxy: Vec<String>) -> Option<EgressProxy> {
        let example = "proxy = \"http://proxy.internal:3128\"";
        let url = match url::Url::parse(text) {
            Ok(url) => url,
            Err(error) => {
                self.error("egress.proxy", format!("`{text}` is not a URL: {error}"), example);
                return None;
            }
        };
        let mut problems = Vec::new();
        if url.scheme() != "http" {
            // `proxy:3128` parses with the scheme `proxy`: what else is wrong is noise then.
            let message =
                format!("`{text}`: the scheme is `{}`; a proxy is `http://`", url.scheme());
            self.error("egress.proxy", message, example);
            return None;
        }
        if url.host().is_none() {
            problems.push("it has no host".to_owned());
        }
        if !url.username().is_empty() || url.password().is_some() {
            problems.push("credentials in the proxy URL are not supported".to_owned());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            problems.push("a proxy URL has no path, query or fragment".to_owned());
        }
        for problem in &problems {
            self.error("egress.proxy", format!("`{text}`: {problem}"), example);
        }
        for (index, entry) in no_proxy.iter().enumerate() {
            let valid = !entry.trim().is_empty()
                && !entry.contains(',')
                && !entry.chars().any(char::is_whitespace);
            if !valid {
                self.error(
                    format!("egress.no_proxy[{index}]"),
                    format!("`{entry}` is not a host name, address or network"),
                    "no_proxy = [\"billing.internal\", \"10.0.0.0/8\"]",
                );
            }
        }
        problems.is_empty().then_some(EgressProxy { url, no_proxy })
    }

    pub(super) fn nats(&mut self, nats: raw::NatsConfig) -> Option<Nats> {
        let mut urls = Vec::new();
        let named = nats.url.iter().map(|url| ("nats.url".to_owned(), url));
        let listed =
            nats.urls.iter().enumerate().map(|(index, url)| (format!("nats.urls[{index}]"), url));
        for (path, url) in named.chain(listed) {
            let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
                .iter()
                .any(|scheme| url.starts_with(scheme));
            if !scheme_ok {
                self.error(
                    path,
                    format!("`{url}` is not a NATS URL (nats://, tls://, ws:// or wss://)"),
                    "url = \"nats://127.0.0.1:4222\"",
                );
            }
            urls.push(url.clone());
        }
        if urls.is_empty() {
            self.error(
                "nats.url",
                "missing field `url` (or `urls`)",
                "url = \"nats://127.0.0.1:4222\"",
            );
        }
        let url = urls.first().cloned().unwrap_or_default();
        let credentials = nats.credentials.and_then(|s| self.secret("nats.credentials", s));
        let nkey = nats.nkey.and_then(|s| self.secret("nats.nkey", s));
        let token = nats.token.and_then(|s| self.secret("nats.token", s));
        let password = nats.password.and_then(|s| self.secret("nats.password", s));
        let mut methods = Vec::new();
        if let Some(secret) = credentials {
            methods.push(NatsAuth::Credentials(secret));
        }
        if let Some(secret) = nkey {
            methods.push(NatsAuth::Nkey(secret));
        }
        if let Some(secret) = token {
            methods.push(NatsAuth::Token(secret));
        }
        match (nats.user, password) {
            (Some(user), Some(password)) => methods.push(NatsAuth::UserPassword { user, password }),
            (None, None) => {}
            (Some(_), None) => self.error(
                "nats.password",
                "`user` needs a `password`",
                "password = { env = \"NATS_PASSWORD\" }",
            ),
            (None, Some(_)) => {
                self.error("nats.user", "`password` needs a `user`", "user = \"switchyard\"")
            }
        }
        if methods.len() > 1 {
            self.error(
                "nats",
                "set one way to authenticate: `credentials`, `nkey`, `token` or `user` + `password`",
                "credentials = { file = \"switchyard.creds\" }",
            );
        }
        Some(Nats {
            url,
            urls,
            auth: methods.pop().unwrap_or(NatsAuth::None),
            outcomes: nats.outcomes,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use crate::config::{self, Limits, ProcessEnvironment};

    fn limits(line: &str) -> Result<Limits, Vec<String>> {
        let text = format!("[server]\nlimits = {line}\n[sources.hooks]\n");
        config::parse(&text, Path::new("."), &ProcessEnvironment)
            .map(|topology| topology.server.limits)
            .map_err(|errors| {
                errors.0.iter().map(|error| format!("{}: {}", error.path, error.message)).collect()
            })
    }

    #[test]
    fn limits_default_as_documented_and_read_every_key() {
        assert_eq!(limits("{}").unwrap(), Limits::default());
        let read = limits(
            "{ connections = 50, header_timeout = \"2s\", body_timeout = \"500ms\", \
             min_body_rate = \"10KiB/s\", http2_streams = 8 }",
        )
        .unwrap();
        let expected = Limits {
            connections: 50,
            header_timeout: Duration::from_secs(2),
            body_timeout: Duration::from_millis(500),
            min_body_rate: 10 * 1024,
            http2_streams: 8,
        };
        assert_eq!(read, expected);
        assert_eq!(limits("{ min_body_rate = \"0/s\" }").unwrap().min_body_rate, 0);
    }

    #[test]
    fn bad_limits_are_each_named_with_their_key() {
        let errors = limits(
            "{ connections = 0, header_timeout = \"0s\", body_timeout = \"soon\", \
             min_body_rate = \"1KiB\", http2_streams = 20000 }",
        )
        .unwrap_err();
        let text = errors.join("\n");
        for expected in [
            "server.limits.connections: `0` is out of range; expected 1 to 1000000",
            "server.limits.http2_streams: `20000` is out of range; expected 1 to 10000",
            "server.limits.header_timeout: must be longer than zero",
            "server.limits.body_timeout: `soon` is not a duration",
            "server.limits.min_body_rate: `1KiB` is not a rate; expected a size per second",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
        assert_eq!(errors.len(), 5, "{text}");
    }
}

#[cfg(test)]
mod tls_tests {
    use std::path::Path;

    use crate::config::{self, ProcessEnvironment};

    fn problems(text: &str) -> Vec<String> {
        match config::parse(text, Path::new("."), &ProcessEnvironment) {
            Ok(_) => Vec::new(),
            Err(errors) => {
                errors.0.iter().map(|error| format!("{}: {}", error.path, error.message)).collect()
            }
        }
    }

    #[test]
    fn nats_sources_take_no_client_certificate() {
        let text = "[nats]\nurl = \"nats://127.0.0.1:4222\"\n\n[sources.orders]\ntype = \"nats\"\n\
                    subject = \"orders.>\"\nclient_cert = { subjects = [\"CN=billing\"] }\n";
        let problems = problems(text);
        let expected = "sources.orders.client_cert: only `http` and `api` sources take \
                        `client_cert`: NATS messages carry no client certificate";
        assert!(problems.iter().any(|problem| problem == expected), "{problems:?}");
    }

    #[test]
    fn the_admin_listener_needs_an_address_of_its_own() {
        let text = |admin: &str| {
            format!("[server]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"{admin}\"\n")
        };
        assert_eq!(problems(&text("127.0.0.1:8081")), Vec::<String>::new());
        assert_eq!(
            problems(&text("127.0.0.1:8080")),
            [
                "server.admin_listen: `127.0.0.1:8080` is `server.listen` too; give the admin API its own port"
            ]
        );
        assert_eq!(
            problems(&text("internal")),
            ["server.admin_listen: `internal` is not an IP address and port"]
        );
    }

    #[test]
    fn tls_files_modes_and_client_subjects_are_checked() {
        let text = "[server]\ntls = { cert = \"missing.pem\", key = \"Cargo.toml\", \
                    client_auth = \"required\" }\n\n[sources.billing]\n\
                    client_cert = { subjects = [\"CN=billing\", \"billing\"] }\n";
        assert_eq!(
            problems(text),
            [
                "server.tls.cert: `missing.pem` is not a file",
                "server.tls.client_auth: `required` needs `client_ca`, the CAs client certificates chain to",
                "sources.billing.client_cert: client certificates need `server.tls.client_ca` to be verified",
                "sources.billing.client_cert.subjects[1]: `billing` is not `TYPE=value`, e.g. `CN=billing`",
            ]
        );
    }
}
