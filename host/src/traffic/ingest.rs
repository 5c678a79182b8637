//! Ingest rate limits: a token bucket per source, or per source and client, and which address
//! a request comes from.
//!
//! Owns [`IngestLimits`], the buckets of every limited source, bounded in memory: a bucket
//! that has refilled is the same as a new one and is forgotten at the next sweep, and when
//! [`MAX_CLIENT_BUCKETS`] clients are remembered at once, further new clients share one bucket
//! per source (an address spray cannot grow memory, and is limited as one client). Owns
//! [`client_address`] too: the peer, or the first untrusted hop of `x-forwarded-for` when the
//! peer is a trusted proxy. Pure apart from one mutex: time is passed in. Must not answer
//! requests or read headers itself; the ingress handlers do both.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::bucket::TokenBucket;
use super::rate::Rate;

/// The most client buckets remembered at once, all sources together.
pub const MAX_CLIENT_BUCKETS: usize = 100_000;
/// The least time between two sweeps of refilled buckets.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Whom one bucket limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Every sender of the source together.
    Source,
    /// Each client address on its own.
    Client,
}

/// A source's `rate_limit`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IngestRule {
    pub rate: Rate,
    pub burst: u32,
    pub per: Per,
}

/// Whose bucket: a source's, a client's of a source, or the shared one of a source's clients
/// that came when the table was full.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Holder {
    Source,
    Client(IpAddr),
    Overflow,
}

/// The buckets of every limited source (and client). Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct IngestLimits {
    table: Mutex<Table>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<(String, Holder), TokenBucket>,
    clients: usize,
    last_sweep: Option<Instant>,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self::with_capacity(MAX_CLIENT_BUCKETS)
    }
}

impl IngestLimits {
    /// Remembers at most `capacity` client buckets at once.
    pub fn with_capacity(capacity: usize) -> Self {
        Self { table: Mutex::new(Table::default()), capacity }
    }

    /// Takes a token for one request to `source` from `client` under `rule`; otherwise
    /// answers how long until the sender may try again.
    pub fn check(
        &self,
        source: &str,
        rule: &IngestRule,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        // A poisoned table only ever holds whole buckets: every update is one call.
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let holder = match rule.per {
            Per::Source => Holder::Source,
            Per::Client => Holder::Client(client),
        };
        let mut key = (source.to_owned(), holder);
        if matches!(key.1, Holder::Client(_)) && !table.buckets.contains_key(&key) {
            if table.clients >= self.capacity {
                table.sweep(now);
            }
            if table.clients >= self.capacity {
                key.1 = Holder::Overflow;
            } else {
                table.clients += 1;
            }
        }
        let bucket = table
            .buckets
            .entry(key)
            .and_modify(|bucket| {
                if !bucket.has_settings(rule.rate, rule.burst) {
                    *bucket = TokenBucket::new(rule.rate, rule.burst, now);
                }
            })
            .or_insert_with(|| TokenBucket::new(rule.rate, rule.burst, now));
        let taken = bucket.take(now);
        if table.last_sweep.is_none_or(|last| now.saturating_duration_since(last) >= SWEEP_EVERY) {
            table.sweep(now);
        }
        taken
    }

    /// Client buckets remembered now.
    pub fn clients(&self) -> usize {
        self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clients
    }
}

impl Table {
    /// Forgets every bucket that has refilled: it is the same as a new one.
    fn sweep(&mut self, now: Instant) {
        self.last_sweep = Some(now);
        let mut forgotten_clients = 0;
        self.buckets.retain(|(_, holder), bucket| {
            let keep = !bucket.is_full(now);
            if !keep && matches!(holder, Holder::Client(_)) {
                forgotten_clients += 1;
            }
            keep
        });
        self.clients -= forgotten_clients;
    }
}

/// The seconds a `Retry-After` header gives for `wait`: whole seconds, rounded up from the
/// millisecond (the bucket's own rounding is a microsecond), at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    millis.div_ceil(1000).max(1)
}

/// The client a request comes from: `peer`, unless `peer` is in `trusted_proxies`; then the
/// first hop of `x-forwarded-for` (its values in order, comma-separated lists) that is not a
/// trusted proxy, read from the right. A hop that is not an address ends the walk at the last
/// address read, and so does the list running out.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted =
        |address: &IpAddr| trusted_proxies.iter().any(|network| network.contains(address));
    let mut client = peer.to_canonical();
    if !trusted(&client) {
        return client;
    }
    let hops = forwarded_for.iter().flat_map(|value| value.split(',')).collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        let Some(address) = parse_hop(hop) else { break };
        client = address.to_canonical();
        if !trusted(&client) {
            break;
        }
    }
    client
}

/// One `x-forwarded-for` hop: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(address) = hop.parse() {
        return Some(address);
    }
    if let Ok(socket) = hop.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(rate: &str, burst: u32, per: Per) -> IngestRule {
        IngestRule { rate: Rate::parse(rate).unwrap(), burst, per }
    }

    fn address(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_source_limit_counts_every_client_together() {
        let limits = IngestLimits::default();
        let rule = rule("1/s", 3, Per::Source);
        let now = Instant::now();
        let accepted = (0..10)
            .filter(|index| {
                let client = address(&format!("10.0.0.{index}"));
                limits.check("github", &rule, client, now).is_ok()
            })
            .count();
        assert_eq!(accepted, 3);
        // Other sources have their own bucket.
        assert!(limits.check("stripe", &rule, address("10.0.0.1"), now).is_ok());
        assert_eq!(limits.clients(), 0);
    }

    #[test]
    fn a_client_limit_counts_each_client_apart() {
        let limits = IngestLimits::default();
        let rule = rule("1/s", 2, Per::Client);
        let now = Instant::now();
        let (first, second) = (address("127.0.0.2"), address("127.0.0.3"));
        for _ in 0..2 {
            assert!(limits.check("github", &rule, first, now).is_ok());
        }
        let wait = limits.check("github", &rule, first, now).unwrap_err();
        assert!(
            wait > Duration::from_millis(999) && wait < Duration::from_millis(1001),
            "{wait:?}"
        );
        assert!(limits.check("github", &rule, second, now).is_ok());
        assert_eq!(limits.clients(), 2);
    }

    #[test]
    fn refilled_client_buckets_are_forgotten() {
        let limits = IngestLimits::default();
        let rule = rule("10/s", 1, Per::Client);
        let start = Instant::now();
        for index in 0..50 {
            limits.check("github", &rule, address(&format!("10.0.1.{index}")), start).unwrap();
        }
        assert_eq!(limits.clients(), 50);
        let later = start + Duration::from_secs(2);
        limits.check("github", &rule, address("10.0.2.1"), later).unwrap();
        assert_eq!(limits.clients(), 1);
    }

    #[test]
    fn clients_past_the_capacity_share_one_bucket() {
        let limits = IngestLimits::with_capacity(4);
        let rule = rule("1/h", 1, Per::Client);
        let now = Instant::now();
        for index in 0..4 {
            limits.check("github", &rule, address(&format!("10.0.0.{index}")), now).unwrap();
        }
        // The fifth new client takes the shared bucket's token; the sixth finds none.
        assert!(limits.check("github", &rule, address("10.0.0.5"), now).is_ok());
        assert!(limits.check("github", &rule, address("10.0.0.6"), now).is_err());
        assert_eq!(limits.clients(), 4);
        // Known clients keep their own bucket.
        assert!(limits.check("github", &rule, address("10.0.0.1"), now).is_err());
    }

    #[test]
    fn a_changed_rule_starts_a_new_bucket() {
        let limits = IngestLimits::default();
        let now = Instant::now();
        let client = address("10.0.0.1");
        limits.check("github", &rule("1/h", 1, Per::Source), client, now).unwrap();
        assert!(limits.check("github", &rule("1/h", 1, Per::Source), client, now).is_err());
        assert!(limits.check("github", &rule("1/h", 2, Per::Source), client, now).is_ok());
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        let cases = [(0, 1), (1, 1), (999, 1), (1000, 1), (1001, 2), (2500, 3)];
        for (millis, seconds) in cases {
            assert_eq!(retry_after_seconds(Duration::from_millis(millis)), seconds, "{millis}");
        }
        // An hour's wait, as a bucket answers it: an hour.
        let hour = Duration::from_secs(3600) + Duration::from_micros(1);
        assert_eq!(retry_after_seconds(hour), 3600);
    }

    #[test]
    fn the_client_is_the_first_untrusted_hop_behind_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let cases: [(&str, &[&str], &str); 9] = [
            // An untrusted peer is the client, whatever it forwards.
            ("203.0.113.9", &["198.51.100.1"], "203.0.113.9"),
            // A trusted peer: the rightmost untrusted hop.
            ("10.0.0.1", &["198.51.100.1, 203.0.113.7"], "203.0.113.7"),
            ("10.0.0.1", &["198.51.100.1, 203.0.113.7, 10.1.1.1"], "203.0.113.7"),
            // Several header lines are one list, in order.
            ("10.0.0.1", &["198.51.100.1", "203.0.113.8, 10.2.2.2"], "203.0.113.8"),
            // Ports are allowed.
            ("10.0.0.1", &["[2001:db8::1]:443"], "2001:db8::1"),
            ("10.0.0.1", &["198.51.100.4:8080"], "198.51.100.4"),
            // Nothing forwarded, or only proxies: the last address read.
            ("10.0.0.1", &[], "10.0.0.1"),
            ("10.0.0.1", &["10.3.3.3"], "10.3.3.3"),
            // Garbage ends the walk at the last trusted hop.
            ("10.0.0.1", &["203.0.113.1, unknown, 10.4.4.4"], "10.4.4.4"),
        ];
        for (peer, forwarded, expected) in cases {
            let client = client_address(address(peer), forwarded, &trusted);
            assert_eq!(client, address(expected), "{peer} {forwarded:?}");
        }
        // An IPv4 peer seen as IPv6 is the same peer.
        let mapped = address("::ffff:10.0.0.1");
        assert_eq!(client_address(mapped, &["203.0.113.2"], &trusted), address("203.0.113.2"));
    }
}
