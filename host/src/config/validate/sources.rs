//! `[sources.<id>]`: the source type and its own keys, the event-type rule, dedupe and body
//! limits.

use std::time::Duration;

use super::{Ids, Validator};
use crate::config::endpoint_rules::is_header_name;
use crate::config::raw;
use crate::config::topology::*;
use crate::routing::SubjectPattern;
use crate::traffic::ingest::{IngestRule, Per};
use crate::traffic::rate::Rate;

const DEFAULT_ACK_WAIT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_ACK_PENDING: u32 = 1024;

/// The keys only `type = "nats"` sources have.
struct NatsKeys {
    subject: Option<String>,
    queue_group: Option<String>,
    jetstream: Option<raw::JetStreamSourceConfig>,
}

impl Validator<'_> {
    pub(super) fn source(
        &mut self,
        id: &str,
        source: raw::SourceConfig,
        ids: &Ids,
        has_nats: bool,
        default_max_body: u64,
        client_ca: bool,
    ) -> Source {
        let at = |key: &str| format!("sources.{id}.{key}");
        if id == crate::notify::SOURCE {
            self.error(
                format!("sources.{id}"),
                format!(
                    "`{id}` is the built-in source of operational events and cannot be declared; \
                     route it with `from = [\"{id}\"]`"
                ),
                "[sources.github]",
            );
        }
        self.references(&at("verify"), &source.verify, &ids.plugins, "plugin");
        let nats = NatsKeys {
            subject: source.subject,
            queue_group: source.queue_group,
            jetstream: source.jetstream,
        };
        let kind = self.source_kind(&at, source.kind.as_deref(), nats, has_nats);
        let event_type =
            source.event_type.and_then(|rule| self.event_type(&at("event_type"), rule));
        let dedupe = source.dedupe.map(|dedupe| self.dedupe(&at("dedupe"), dedupe));
        let max_body = self.size(&at("max_body"), source.max_body.as_deref(), default_max_body);
        if matches!(kind, SourceKind::Nats { .. }) && source.client_cert.is_some() {
            self.error(
                at("client_cert"),
                "only `http` and `api` sources take `client_cert`: NATS messages carry no client certificate",
                "type = \"http\"",
            );
        }
        let client_subjects = source
            .client_cert
            .map(|client_cert| self.client_subjects(&at("client_cert"), client_cert, client_ca));
        let rate_limit = source.rate_limit.and_then(|limit| self.rate_limit(&at, limit, &kind));
        Source {
            id: id.to_owned(),
            kind,
            verify: source.verify,
            event_type,
            dedupe,
            max_body,
            client_subjects,
            rate_limit,
        }
    }

    fn client_subjects(
        &mut self,
        at: &str,
        client_cert: raw::ClientCertConfig,
        client_ca: bool,
    ) -> Vec<crate::listener::subject::SubjectPattern> {
        if !client_ca {
            self.error(
                at,
                "client certificates need `server.tls.client_ca` to be verified",
                "tls = { cert = \"cert.pem\", key = \"key.pem\", client_ca = \"ca.pem\" }",
            );
        }
        if client_cert.subjects.is_empty() {
            self.error(
                format!("{at}.subjects"),
                "list at least one subject",
                "subjects = [\"CN=billing\"]",
            );
        }
        let mut patterns = Vec::new();
        for (index, text) in client_cert.subjects.iter().enumerate() {
            match crate::listener::subject::SubjectPattern::parse(text) {
                Ok(pattern) => patterns.push(pattern),
                Err(message) => self.error(
                    format!("{at}.subjects[{index}]"),
                    message,
                    "subjects = [\"CN=billing\"]",
                ),
            }
        }
        patterns
    }

    fn rate_limit(
        &mut self,
        at: &dyn Fn(&str) -> String,
        limit: raw::RateLimitConfig,
        kind: &SourceKind,
    ) -> Option<IngestRule> {
        const EXAMPLE: &str = "rate_limit = { rate = \"100/s\", burst = 200, per = \"source\" }";
        let rate = match Rate::parse(&limit.rate) {
            Ok(rate) => Some(rate),
            Err(message) => {
                self.error(at("rate_limit.rate"), message, EXAMPLE);
                None
            }
        };
        let burst = match limit.burst {
            None => None,
            Some(burst @ 1..=1_000_000) => Some(burst as u32),
            Some(other) => {
                self.error(
                    at("rate_limit.burst"),
                    format!("`{other}` is out of range 1..=1000000"),
                    EXAMPLE,
                );
                None
            }
        };
        let per = match limit.per.as_deref() {
            None | Some("source") => Per::Source,
            Some("client") if matches!(kind, SourceKind::Nats { .. }) => {
                self.error(
                    at("rate_limit.per"),
                    "nats sources have no clients; a nats source is limited as a whole",
                    "rate_limit = { rate = \"100/s\" }",
                );
                Per::Source
            }
            Some("client") => Per::Client,
            Some(other) => {
                self.error(
                    at("rate_limit.per"),
                    format!("`{other}` is not a rate limit scope; expected `source` or `client`"),
                    EXAMPLE,
                );
                Per::Source
            }
        };
        let rate = rate?;
        // One second's worth of the rate, at least one.
        let burst = burst.unwrap_or_else(|| (rate.per_second().ceil() as u32).max(1));
        Some(IngestRule { rate, burst, per })
    }

    fn source_kind(
        &mut self,
        at: &dyn Fn(&str) -> String,
        kind: Option<&str>,
        nats: NatsKeys,
        has_nats: bool,
    ) -> SourceKind {
        match kind {
            None | Some("http") | Some("api") => {
                let keys = [
                    ("subject", nats.subject.is_some()),
                    ("queue_group", nats.queue_group.is_some()),
                    ("jetstream", nats.jetstream.is_some()),
                ];
                self.only_for(at, "nats", "sources", &keys);
                if kind == Some("api") { SourceKind::Api } else { SourceKind::Http }
            }
            Some("nats") => self.nats_source(at, nats, has_nats),
            Some(other) => {
                self.error(
                    at("type"),
                    format!("`{other}` is not a source type; expected `http`, `nats` or `api`"),
                    "type = \"http\"",
                );
                SourceKind::Http
            }
        }
    }

    fn nats_source(
        &mut self,
        at: &dyn Fn(&str) -> String,
        nats: NatsKeys,
        has_nats: bool,
    ) -> SourceKind {
        if !has_nats {
            self.error(
                at("type"),
                "nats sources need a `[nats]` section",
                "[nats]\nurl = \"nats://127.0.0.1:4222\"",
            );
        }
        let subject = nats.subject.unwrap_or_else(|| {
            self.error(at("subject"), "nats sources need a `subject`", "subject = \"orders.>\"");
            String::new()
        });
        if !subject.is_empty() && SubjectPattern::parse(&subject).is_err() {
            self.error(
                at("subject"),
                format!("`{subject}` is not a NATS subject"),
                "subject = \"orders.>\"",
            );
        }
        let jetstream = nats.jetstream.map(|jetstream| self.jetstream(at, jetstream));
        SourceKind::Nats { subject, queue_group: nats.queue_group, jetstream }
    }

    fn jetstream(
        &mut self,
        at: &dyn Fn(&str) -> String,
        jetstream: raw::JetStreamSourceConfig,
    ) -> JetStreamConsumer {
        let max_ack_pending = match jetstream.max_ack_pending {
            None => DEFAULT_MAX_ACK_PENDING,
            Some(n) if (1..=65_536).contains(&n) => n as u32,
            Some(n) => {
                self.error(
                    at("jetstream.max_ack_pending"),
                    format!("`{n}` is out of range 1..=65536"),
                    "max_ack_pending = 1024",
                );
                DEFAULT_MAX_ACK_PENDING
            }
        };
        JetStreamConsumer {
            stream: jetstream.stream,
            durable: jetstream.durable,
            ack_wait: self.duration(
                &at("jetstream.ack_wait"),
                jetstream.ack_wait.as_deref(),
                DEFAULT_ACK_WAIT,
            ),
            max_ack_pending,
        }
    }

    fn dedupe(&mut self, path: &str, dedupe: raw::DedupeConfig) -> DedupeRule {
        if !is_header_name(&dedupe.header) {
            self.error(
                format!("{path}.header"),
                format!("`{}` is not a header name", dedupe.header),
                "dedupe = { header = \"x-github-delivery\" }",
            );
        }
        DedupeRule {
            header: dedupe.header.to_ascii_lowercase(),
            window: self.duration(
                &format!("{path}.window"),
                dedupe.window.as_deref(),
                DEFAULT_DEDUPE_WINDOW,
            ),
        }
    }

    fn event_type(&mut self, path: &str, rule: raw::EventTypeConfig) -> Option<EventTypeRule> {
        let example = "event_type = { header = \"x-github-event\", prefix = \"github.\" }";
        if rule.prefix.is_some() && rule.header.is_none() {
            self.error(format!("{path}.prefix"), "`prefix` goes with `header` only", example);
        }
        let rule = match (rule.header, rule.json, rule.value) {
            (Some(header), None, None) => {
                if !is_header_name(&header) {
                    self.error(
                        format!("{path}.header"),
                        format!("`{header}` is not a header name"),
                        example,
                    );
                }
                EventTypeRule::Header {
                    name: header.to_ascii_lowercase(),
                    prefix: rule.prefix.unwrap_or_default(),
                }
            }
            (None, Some(pointer), None) => {
                if !pointer.starts_with('/') {
                    self.error(
                        format!("{path}.json"),
                        format!("`{pointer}` is not a JSON pointer; it starts with `/`"),
                        "event_type = { json = \"/type\" }",
                    );
                }
                EventTypeRule::JsonPointer(pointer)
            }
            (None, None, Some(value)) if !value.is_empty() => EventTypeRule::Constant(value),
            _ => {
                self.error(
                    path,
                    "set exactly one of `header`, `json` or `value` (non-empty)",
                    example,
                );
                return None;
            }
        };
        Some(rule)
    }
}
