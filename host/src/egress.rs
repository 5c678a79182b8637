//! Which network addresses outbound deliveries may reach: the pure core of the SSRF guard.
//!
//! Owns the classification of IP addresses (public or one of the non-public kinds) and the
//! decision against `egress.allow_networks`. It does no DNS and opens no sockets: the delivery
//! client calls [`EgressPolicy::check`] on every resolved address at connect time, and config
//! validation calls it on endpoint URLs that hold a literal IP.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Why an address is not public. Rendered in errors and in recorded attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    Unspecified,
    Loopback,
    Private,
    LinkLocal,
    SharedAddressSpace,
    Multicast,
    Broadcast,
    Documentation,
    Reserved,
    UniqueLocal,
    Ipv4Mapped,
    Translated,
}

impl fmt::Display for AddressKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::SharedAddressSpace => "shared (carrier-grade NAT)",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Reserved => "reserved",
            Self::UniqueLocal => "unique-local",
            Self::Ipv4Mapped => "IPv4-mapped",
            Self::Translated => "IPv4-translated",
        })
    }
}

/// Classifies `address`: `None` when it is a public unicast address.
pub fn non_public_kind(address: IpAddr) -> Option<AddressKind> {
    match address {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(address: Ipv4Addr) -> Option<AddressKind> {
    let [a, b, c, _] = address.octets();
    let kind = match (a, b, c) {
        (0, _, _) => AddressKind::Unspecified,
        (127, _, _) => AddressKind::Loopback,
        (10, _, _) | (192, 168, _) => AddressKind::Private,
        (172, 16..=31, _) => AddressKind::Private,
        (169, 254, _) => AddressKind::LinkLocal,
        (100, 64..=127, _) => AddressKind::SharedAddressSpace,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => AddressKind::Documentation,
        // 192.0.0.0/24 protocol assignments, 198.18.0.0/15 benchmarking.
        (192, 0, 0) | (198, 18..=19, _) => AddressKind::Reserved,
        _ if address.is_broadcast() => AddressKind::Broadcast,
        (224..=239, _, _) => AddressKind::Multicast,
        (240..=255, _, _) => AddressKind::Reserved,
        _ => return None,
    };
    Some(kind)
}

fn v6_kind(address: Ipv6Addr) -> Option<AddressKind> {
    let segments = address.segments();
    let kind = if address.is_unspecified() {
        AddressKind::Unspecified
    } else if address.is_loopback() {
        AddressKind::Loopback
    } else if address.to_ipv4_mapped().is_some() {
        // Counted as non-public whatever the IPv4 inside: stacks differ on how they route them.
        AddressKind::Ipv4Mapped
    } else if segments[0] & 0xfe00 == 0xfc00 {
        AddressKind::UniqueLocal
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        AddressKind::LinkLocal
    } else if segments[0] & 0xff00 == 0xff00 {
        AddressKind::Multicast
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        AddressKind::Documentation
    } else if segments[0] == 0x0064 && segments[1] == 0xff9b
        || segments[0] == 0x2002
        || segments[0] == 0x2001 && segments[1] == 0
    {
        // NAT64, 6to4 and Teredo embed an IPv4 address that may well be private.
        AddressKind::Translated
    } else if segments[..6].iter().all(|segment| *segment == 0) || segments[0] & 0xe000 != 0x2000 {
        // IPv4-compatible (deprecated) and everything outside global unicast 2000::/3.
        AddressKind::Reserved
    } else {
        return None;
    };
    Some(kind)
}

/// The egress rules of one topology.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub allow_networks: Vec<IpNet>,
    pub https_only: bool,
    /// Deliveries go through this HTTP proxy (`egress.proxy`); the rules above still apply to
    /// every target, checked before the proxy is asked.
    pub proxy: Option<EgressProxy>,
}

/// `egress.proxy` and the targets that bypass it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressProxy {
    /// `http://host:port`: HTTPS targets through `CONNECT`, HTTP targets as absolute-form
    /// requests.
    pub url: url::Url,
    /// Host names (a leading `.` or none: the domain and its subdomains), IP addresses and
    /// networks reached directly (`egress.no_proxy`).
    pub no_proxy: Vec<String>,
}

/// An address the policy refuses, with the reason a user can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{address}` is not a public address ({kind}) and is outside `egress.allow_networks`")]
pub struct BlockedAddress {
    pub address: IpAddr,
    pub kind: AddressKind,
}

impl EgressPolicy {
    /// Allows public addresses and anything inside `allow_networks`; refuses the rest.
    pub fn check(&self, address: IpAddr) -> Result<(), BlockedAddress> {
        let Some(kind) = non_public_kind(address) else { return Ok(()) };
        let canonical = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            IpAddr::V4(_) => address,
        };
        let allowed = self
            .allow_networks
            .iter()
            .any(|network| network.contains(&address) || network.contains(&canonical));
        if allowed { Ok(()) } else { Err(BlockedAddress { address, kind }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(text: &str) -> Option<AddressKind> {
        non_public_kind(text.parse().unwrap())
    }

    #[test]
    fn classification() {
        use AddressKind::*;
        let table = [
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("0.0.0.0", Some(Unspecified)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.1", None),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("100.64.0.1", Some(SharedAddressSpace)),
            ("100.128.0.1", None),
            ("224.0.0.1", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.2.10", Some(Documentation)),
            ("198.18.0.1", Some(Reserved)),
            ("2606:4700::1111", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Ipv4Mapped)),
            ("::ffff:8.8.8.8", Some(Ipv4Mapped)),
            ("fd00::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("64:ff9b::a00:1", Some(Translated)),
            ("2002:a00:1::", Some(Translated)),
            ("::127.0.0.1", Some(Reserved)),
            ("100::1", Some(Reserved)),
        ];
        for (address, expected) in table {
            assert_eq!(kind(address), expected, "{address}");
        }
    }

    #[test]
    fn allow_networks() {
        let policy = EgressPolicy {
            allow_networks: vec!["127.0.0.0/8".parse().unwrap()],
            https_only: false,
            proxy: None,
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("8.8.8.8".parse().unwrap()).is_ok());
        let blocked = policy.check("10.0.0.1".parse().unwrap()).unwrap_err();
        assert_eq!(
            blocked.to_string(),
            "`10.0.0.1` is not a public address (private) and is outside `egress.allow_networks`"
        );
        assert!(EgressPolicy::default().check("127.0.0.1".parse().unwrap()).is_err());
    }
}
