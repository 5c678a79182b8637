//! Client certificate subjects: read from a verified certificate's DER, and matched against
//! a source's `client_cert.subjects` patterns; and the names a certificate is for (its
//! subject alternative names), which the CLI asks for when it calls the router over TLS.
//!
//! Pure: no I/O and no TLS. Only the subject's attributes and the alternative names are read
//! (rustls verifies certificates; nothing here decides trust), so a tiny DER reader suffices.
//! Attribute types understood: `CN`, `O`, `OU`, `C`, `L`, `ST`, `DC`; others are kept out of
//! the subject.
//! A pattern is comma-separated `TYPE=value` pairs (no escaping, so values cannot hold a
//! comma); it matches a subject holding every pair it lists, in any order, so `CN=billing`
//! matches `CN=billing,O=Acme`. Types are case-insensitive, values exact.

/// The subject of a verified client certificate, as request extensions carry it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSubject {
    /// `(type, value)` pairs in the certificate's order, e.g. `("CN", "billing")`.
    pub attributes: Vec<(String, String)>,
}

impl std::fmt::Display for PeerSubject {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (index, (kind, value)) in self.attributes.iter().enumerate() {
            let separator = if index == 0 { "" } else { "," };
            write!(formatter, "{separator}{kind}={value}")?;
        }
        Ok(())
    }
}

/// A configured subject pattern, e.g. `CN=billing`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectPattern {
    pub text: String,
    attributes: Vec<(String, String)>,
}

const KNOWN_TYPES: [&str; 7] = ["CN", "O", "OU", "C", "L", "ST", "DC"];

impl SubjectPattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut attributes = Vec::new();
        for pair in text.split(',') {
            let Some((kind, value)) = pair.split_once('=') else {
                return Err(format!("`{pair}` is not `TYPE=value`, e.g. `CN=billing`"));
            };
            let (kind, value) = (kind.trim().to_ascii_uppercase(), value.trim());
            if !KNOWN_TYPES.contains(&kind.as_str()) {
                return Err(format!(
                    "`{kind}` is not a subject attribute type; expected one of {}",
                    KNOWN_TYPES.join(", ")
                ));
            }
            if value.is_empty() {
                return Err(format!("`{kind}` has no value"));
            }
            attributes.push((kind, value.to_owned()));
        }
        Ok(Self { text: text.to_owned(), attributes })
    }

    pub fn matches(&self, subject: &PeerSubject) -> bool {
        self.attributes.iter().all(|wanted| subject.attributes.contains(wanted))
    }
}

/// The subject of a DER-encoded X.509 certificate; `None` when it cannot be read.
pub fn subject_of(certificate: &[u8]) -> Option<PeerSubject> {
    let (mut names, _) = read(from_subject(certificate)?, SEQUENCE)?;
    let mut attributes = Vec::new();
    while !names.is_empty() {
        let (mut set, rest) = read(names, 0x31)?;
        names = rest;
        while !set.is_empty() {
            let (pair, rest) = read(set, SEQUENCE)?;
            set = rest;
            let (oid, value) = read(pair, 0x06)?;
            let (&string_tag, _) = value.split_first()?;
            let (value, _) = read(value, string_tag)?;
            if let Some(kind) = attribute_type(oid) {
                attributes.push((kind.to_owned(), decode_string(string_tag, value)));
            }
        }
    }
    Some(PeerSubject { attributes })
}

/// The names a certificate is for: its subject alternative names of DNS and IP kinds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateNames {
    pub dns: Vec<String>,
    pub ips: Vec<std::net::IpAddr>,
}

/// The subject alternative names of a DER-encoded X.509 certificate; `None` when it cannot be
/// read, empty when it has none.
pub fn names_of(certificate: &[u8]) -> Option<CertificateNames> {
    let mut fields = from_subject(certificate)?;
    for _subject_then_public_key in 0..2 {
        fields = read(fields, SEQUENCE)?.1;
    }
    for tag in [0x81, 0x82] {
        // the issuer's and subject's unique ids (X.509 v2), rare but allowed
        if fields.first() == Some(&tag) {
            fields = read(fields, tag)?.1;
        }
    }
    let mut names = CertificateNames::default();
    if fields.is_empty() {
        return Some(names);
    }
    let (mut extensions, _) = read(read(fields, 0xa3)?.0, SEQUENCE)?;
    while !extensions.is_empty() {
        let (extension, rest) = read(extensions, SEQUENCE)?;
        extensions = rest;
        let (oid, mut value) = read(extension, 0x06)?;
        if value.first() == Some(&0x01) {
            value = read(value, 0x01)?.1; // critical
        }
        if oid != SUBJECT_ALTERNATIVE_NAME {
            continue;
        }
        let (mut general_names, _) = read(read(value, 0x04)?.0, SEQUENCE)?;
        while let Some(&tag) = general_names.first() {
            let (name, rest) = read(general_names, tag)?;
            general_names = rest;
            match (tag, name.len()) {
                (DNS_NAME, _) => names.dns.push(String::from_utf8_lossy(name).into_owned()),
                (IP_ADDRESS, 4) => names.ips.push(<[u8; 4]>::try_from(name).ok()?.into()),
                (IP_ADDRESS, 16) => names.ips.push(<[u8; 16]>::try_from(name).ok()?.into()),
                _ => {}
            }
        }
    }
    Some(names)
}

/// A certificate's `TBSCertificate` fields from its subject on: the version, serial number,
/// signature algorithm, issuer and validity skipped.
fn from_subject(certificate: &[u8]) -> Option<&[u8]> {
    let (certificate, _) = read(certificate, SEQUENCE)?;
    let (mut fields, _) = read(certificate, SEQUENCE)?;
    if fields.first() == Some(&0xa0) {
        fields = read(fields, 0xa0)?.1; // version
    }
    for tag in [0x02, SEQUENCE, SEQUENCE, SEQUENCE] {
        fields = read(fields, tag)?.1;
    }
    Some(fields)
}

const SEQUENCE: u8 = 0x30;
/// 2.5.29.17.
const SUBJECT_ALTERNATIVE_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// `dNSName` and `iPAddress`, context-specific tags 2 and 7 (implicit, primitive).
const DNS_NAME: u8 = 0x82;
const IP_ADDRESS: u8 = 0x87;

/// Reads one DER element with `tag`: its contents and what follows it.
fn read(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let length = if first < 0x80 {
        usize::from(first)
    } else {
        let octets = usize::from(first & 0x7f);
        if octets == 0 || octets > 4 || rest.len() < octets {
            return None;
        }
        let (digits, after) = rest.split_at(octets);
        rest = after;
        digits.iter().fold(0usize, |length, &digit| (length << 8) | usize::from(digit))
    };
    (rest.len() >= length).then(|| rest.split_at(length))
}

fn attribute_type(oid: &[u8]) -> Option<&'static str> {
    Some(match oid {
        [0x55, 0x04, 0x03] => "CN",
        [0x55, 0x04, 0x06] => "C",
        [0x55, 0x04, 0x07] => "L",
        [0x55, 0x04, 0x08] => "ST",
        [0x55, 0x04, 0x0a] => "O",
        [0x55, 0x04, 0x0b] => "OU",
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC",
        _ => return None,
    })
}

fn decode_string(tag: u8, bytes: &[u8]) -> String {
    match tag {
        // BMPString: UTF-16, big-endian.
        0x1e => {
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|pair| u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate's DER with the given subject, built by hand around the fields the
    /// reader skips.
    fn certificate(subject: &[(&[u8], u8, &str)]) -> Vec<u8> {
        fn element(tag: u8, contents: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if contents.len() < 0x80 {
                out.push(contents.len() as u8);
            } else {
                out.extend([0x82, (contents.len() >> 8) as u8, contents.len() as u8]);
            }
            out.extend_from_slice(contents);
            out
        }
        let mut name = Vec::new();
        for (oid, string_tag, value) in subject {
            let pair = [element(0x06, oid), element(*string_tag, value.as_bytes())].concat();
            name.extend(element(0x31, &element(SEQUENCE, &pair)));
        }
        let tbs = [
            element(0xa0, &element(0x02, &[2])),
            element(0x02, &[1, 2, 3]),
            element(SEQUENCE, &element(0x06, &[0x2a, 0x86, 0x48])),
            element(SEQUENCE, &[]),
            element(SEQUENCE, &[0x17, 0x00]),
            element(SEQUENCE, &name),
            element(SEQUENCE, &[0u8; 200]),
        ]
        .concat();
        element(SEQUENCE, &[element(SEQUENCE, &tbs), element(SEQUENCE, &[])].concat())
    }

    #[test]
    fn the_subject_is_read_in_order_with_known_types_only() {
        let der = certificate(&[
            (&[0x55, 0x04, 0x03], 0x0c, "billing"),
            (&[0x55, 0x04, 0x0a], 0x13, "Acme"),
            (&[0x55, 0x04, 0x2a], 0x0c, "ignored given name"),
        ]);
        let subject = subject_of(&der).expect("readable");
        assert_eq!(subject.to_string(), "CN=billing,O=Acme");
        assert_eq!(subject_of(&der[..der.len() - 10]), None, "a truncated certificate");
    }

    #[test]
    fn a_pattern_matches_subjects_holding_all_its_pairs() {
        let subject = subject_of(&certificate(&[
            (&[0x55, 0x04, 0x03], 0x0c, "billing"),
            (&[0x55, 0x04, 0x0a], 0x0c, "Acme"),
        ]))
        .unwrap();
        let pattern = |text| SubjectPattern::parse(text).unwrap();
        assert!(pattern("CN=billing").matches(&subject));
        assert!(pattern("o=Acme, CN=billing").matches(&subject));
        assert!(!pattern("CN=other").matches(&subject));
        assert!(!pattern("CN=billing,OU=ops").matches(&subject));
        assert!(!pattern("CN=Billing").matches(&subject), "values are exact");
    }

    #[test]
    fn a_certificates_alternative_names_are_read() {
        let certificate = |names: &[&str]| {
            let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
            let params = rcgen::CertificateParams::new(names).unwrap();
            params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().der().to_vec()
        };
        let der = certificate(&["router.example", "127.0.0.1", "*.hooks.example", "::1"]);
        let names = names_of(&der).expect("readable");
        assert_eq!(names.dns, ["router.example", "*.hooks.example"]);
        let loopbacks: [std::net::IpAddr; 2] =
            [[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
        assert_eq!(names.ips, loopbacks);
        assert_eq!(names_of(&certificate(&[])), Some(CertificateNames::default()));
        assert_eq!(names_of(&der[..der.len() / 2]), None, "a truncated certificate");
    }

    #[test]
    fn malformed_patterns_say_what_is_wrong() {
        let problem = |text| SubjectPattern::parse(text).unwrap_err();
        assert_eq!(problem("billing"), "`billing` is not `TYPE=value`, e.g. `CN=billing`");
        assert_eq!(
            problem("SN=x"),
            "`SN` is not a subject attribute type; expected one of CN, O, OU, C, L, ST, DC"
        );
        assert_eq!(problem("CN= "), "`CN` has no value");
    }
}
