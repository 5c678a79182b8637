//! Tests of the signature helper, per scheme: the published vectors pass, and each kind of
//! mistake is named by the part it is in.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::*;

const SW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
const SW_ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
const SW_TIME: i64 = 1649367553;
const SW_BODY: &str = r#"{"email":"test@example.com","username":"test_user"}"#;
const SW_SIGNATURE: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const GITHUB_BODY: &str = "Hello, World!";
const GITHUB_SIGNATURE: &str =
    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

const STRIPE_SECRET: &str = "whsec_test_secret_for_the_helper";

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
}

fn check(scheme: Scheme, secret: &str, pairs: &[(&str, &str)], body: &str, now: i64) -> Diagnosis {
    let headers = headers(pairs);
    let received = Received {
        headers: &headers,
        body: body.as_bytes(),
        now_seconds: now,
        tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
    };
    diagnose(scheme, secret, &received)
}

fn parts(diagnosis: &Diagnosis) -> Vec<Part> {
    diagnosis.findings.iter().map(|finding| finding.part).collect()
}

fn sw(signature: &str, timestamp: &str) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", SW_ID.to_owned()),
        ("webhook-timestamp", timestamp.to_owned()),
        ("webhook-signature", signature.to_owned()),
    ]
}

fn check_sw(secret: &str, signature: &str, timestamp: &str, body: &str, now: i64) -> Diagnosis {
    let owned = sw(signature, timestamp);
    let pairs: Vec<(&str, &str)> =
        owned.iter().map(|(name, value)| (*name, value.as_str())).collect();
    check(Scheme::StandardWebhooks, secret, &pairs, body, now)
}

fn hmac_hex(key: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    parts.iter().for_each(|part| mac.update(part));
    hex::encode(mac.finalize().into_bytes())
}

// === Standard Webhooks ===

#[test]
fn the_standard_webhooks_vector_is_valid() {
    let diagnosis = check_sw(SW_SECRET, SW_SIGNATURE, &SW_TIME.to_string(), SW_BODY, SW_TIME + 10);
    assert!(diagnosis.valid && diagnosis.signature_matches, "{diagnosis:?}");
    assert_eq!(diagnosis.expected.as_deref(), Some(SW_SIGNATURE));
    assert!(diagnosis.findings.is_empty());
}

#[test]
fn a_stale_timestamp_is_named_though_the_signature_matches() {
    let diagnosis = check_sw(SW_SECRET, SW_SIGNATURE, &SW_TIME.to_string(), SW_BODY, SW_TIME + 301);
    assert!(!diagnosis.valid && diagnosis.signature_matches);
    assert_eq!(parts(&diagnosis), [Part::Timestamp]);
    assert!(diagnosis.findings[0].detail.contains("301 s old"), "{diagnosis:?}");
}

#[test]
fn a_wrong_secret_is_named_and_the_secret_is_never_shown() {
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let diagnosis = check_sw(other, SW_SIGNATURE, &SW_TIME.to_string(), SW_BODY, SW_TIME);
    assert!(!diagnosis.signature_matches);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("not the one that signed"));
    assert!(!format!("{diagnosis:?}").contains("MfKQ9r8"));
}

#[test]
fn a_body_with_a_final_newline_or_other_spacing_is_named() {
    let newline = format!("{SW_BODY}\n");
    let diagnosis = check_sw(SW_SECRET, SW_SIGNATURE, &SW_TIME.to_string(), &newline, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Body]);
    assert!(diagnosis.findings[0].detail.contains("without its final newline"), "{diagnosis:?}");
    let spaced = r#"{"email": "test@example.com", "username": "test_user"}"#;
    let diagnosis = check_sw(SW_SECRET, SW_SIGNATURE, &SW_TIME.to_string(), spaced, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Body]);
    assert!(diagnosis.findings[0].detail.contains("without white space"), "{diagnosis:?}");
}

#[test]
fn json_is_respaced_in_member_order_and_strings_are_kept() {
    let body = br#"{ "z": "a, b: \"c\"",
  "a": [1, 2] }"#;
    assert_eq!(respaced_json(body, ""), br#"{"z":"a, b: \"c\"","a":[1,2]}"#);
    assert_eq!(respaced_json(body, " "), br#"{"z": "a, b: \"c\"", "a": [1, 2]}"#);
}

#[test]
fn secret_mistakes_are_named() {
    let diagnosis = check_sw("v1,abc", SW_SIGNATURE, &SW_TIME.to_string(), SW_BODY, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("starts with `v1,`"));
    // The key without its prefix is read as the base64 after it.
    let bare = SW_SECRET.strip_prefix("whsec_").unwrap();
    assert!(check_sw(bare, SW_SIGNATURE, &SW_TIME.to_string(), SW_BODY, SW_TIME).valid);
    // A signer that keyed the HMAC with the secret's text.
    let content = format!("{SW_ID}.{SW_TIME}.{SW_BODY}");
    let mut mac = Hmac::<Sha256>::new_from_slice(SW_SECRET.as_bytes()).unwrap();
    mac.update(content.as_bytes());
    let text_keyed = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    let diagnosis = check_sw(SW_SECRET, &text_keyed, &SW_TIME.to_string(), SW_BODY, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("secret's text"), "{diagnosis:?}");
}

#[test]
fn malformed_standard_webhooks_headers_are_named() {
    let time = SW_TIME.to_string();
    let diagnosis = check_sw(
        SW_SECRET,
        "tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        &time,
        SW_BODY,
        SW_TIME,
    );
    assert_eq!(parts(&diagnosis), [Part::Header]);
    assert!(diagnosis.findings[0].detail.contains("no `v1,<base64>` nor `v1a,<base64>` entry"));
    let millis = format!("{SW_TIME}000");
    let diagnosis = check_sw(SW_SECRET, SW_SIGNATURE, &millis, SW_BODY, SW_TIME);
    assert!(diagnosis.findings[0].detail.contains("milliseconds"), "{diagnosis:?}");
    let diagnosis = check(
        Scheme::StandardWebhooks,
        SW_SECRET,
        &[("webhook-timestamp", "1"), ("webhook-signature", SW_SIGNATURE)],
        SW_BODY,
        SW_TIME,
    );
    assert_eq!(diagnosis.findings[0].detail, "the `webhook-id` header is missing");
}

// === Standard Webhooks v1a (ed25519) ===

/// An ed25519 key pair: `(whsk_…, whpk_…)`, and the header it signs `SW_BODY` with.
fn ed25519_signed(body: &str) -> (String, String, String) {
    let key = SigningKey::from_ed25519_seed(&[7; 32]);
    let secret = format!("whsk_{}", base64::engine::general_purpose::STANDARD.encode([7u8; 32]));
    let public = key.public_key().unwrap();
    let header = signature_header([&key], SW_ID, SW_TIME, body.as_bytes());
    (secret, public, header)
}

#[test]
fn a_v1a_signature_is_checked_with_the_public_or_the_secret_key() {
    let (secret, public, header) = ed25519_signed(SW_BODY);
    assert!(header.starts_with("v1a,"), "{header}");
    let time = SW_TIME.to_string();
    let diagnosis = check_sw(&public, &header, &time, SW_BODY, SW_TIME);
    assert!(diagnosis.valid && diagnosis.signature_matches, "{diagnosis:?}");
    assert_eq!(diagnosis.expected, None, "a public key cannot sign");
    let diagnosis = check_sw(&secret, &header, &time, SW_BODY, SW_TIME);
    assert!(diagnosis.valid, "{diagnosis:?}");
    assert_eq!(diagnosis.expected.as_deref(), Some(header.as_str()));
    // Beside a `v1` entry of another key, the `v1a` entry still matches.
    let both = format!("{SW_SIGNATURE} {header}");
    assert!(check_sw(&public, &both, &time, SW_BODY, SW_TIME).valid);
}

#[test]
fn v1a_mistakes_are_named_by_part() {
    let (_, public, header) = ed25519_signed(SW_BODY);
    let time = SW_TIME.to_string();
    let newline = format!("{SW_BODY}\n");
    let diagnosis = check_sw(&public, &header, &time, &newline, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Body]);
    assert!(diagnosis.findings[0].detail.contains("without its final newline"), "{diagnosis:?}");
    let other = SigningKey::from_ed25519_seed(&[8; 32]).public_key().unwrap();
    let diagnosis = check_sw(&other, &header, &time, SW_BODY, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("not the one that signed"));
    // A key of one version against entries of the other only.
    let diagnosis = check_sw(SW_SECRET, &header, &time, SW_BODY, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("only `v1a` (ed25519) entries"), "{diagnosis:?}");
    let diagnosis = check_sw(&public, SW_SIGNATURE, &time, SW_BODY, SW_TIME);
    assert!(diagnosis.findings[0].detail.contains("only `v1` (HMAC) entries"), "{diagnosis:?}");
    let diagnosis = check_sw("whpk_AAAA", &header, &time, SW_BODY, SW_TIME);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
}

// === GitHub ===

#[test]
fn the_github_vector_is_valid_whatever_the_header_case() {
    let pairs = [("X-Hub-Signature-256", GITHUB_SIGNATURE)];
    let diagnosis = check(Scheme::Github, GITHUB_SECRET, &pairs, GITHUB_BODY, 0);
    assert!(diagnosis.valid, "{diagnosis:?}");
    assert_eq!(diagnosis.expected.as_deref(), Some(GITHUB_SIGNATURE));
}

#[test]
fn github_mistakes_are_named_by_part() {
    let pairs = [("x-hub-signature-256", GITHUB_SIGNATURE)];
    let diagnosis = check(Scheme::Github, GITHUB_SECRET, &pairs, "Hello, World!\n", 0);
    assert_eq!(parts(&diagnosis), [Part::Body]);
    let diagnosis = check(Scheme::Github, "another secret", &pairs, GITHUB_BODY, 0);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    // The signer's secret file ended in a newline.
    let signed = format!("sha256={}", hmac_hex(b"s3cret\n", &[GITHUB_BODY.as_bytes()]));
    let diagnosis =
        check(Scheme::Github, "s3cret\n", &[("x-hub-signature-256", &signed)], GITHUB_BODY, 0);
    assert!(diagnosis.findings[0].detail.contains("white space"), "{diagnosis:?}");
    let sha1 = [("x-hub-signature", "sha1=abc")];
    let diagnosis = check(Scheme::Github, GITHUB_SECRET, &sha1, GITHUB_BODY, 0);
    assert_eq!(parts(&diagnosis), [Part::Header]);
    assert!(diagnosis.findings[0].detail.contains("SHA-1"));
    let bare = [("x-hub-signature-256", &GITHUB_SIGNATURE[7..])];
    let diagnosis = check(Scheme::Github, GITHUB_SECRET, &bare, GITHUB_BODY, 0);
    assert!(diagnosis.findings[0].detail.contains("`sha256=`"));
}

// === Stripe ===

fn stripe_header(key: &[u8], timestamp: i64, body: &str) -> String {
    let stamp = timestamp.to_string();
    format!("t={stamp},v1={}", hmac_hex(key, &[stamp.as_bytes(), b".", body.as_bytes()]))
}

#[test]
fn a_stripe_signature_is_valid_within_the_tolerance_and_stale_past_it() {
    let body = r#"{"id":"evt_1","object":"event"}"#;
    let header = stripe_header(STRIPE_SECRET.as_bytes(), 1_700_000_000, body);
    let pairs = [("stripe-signature", header.as_str())];
    let diagnosis = check(Scheme::Stripe, STRIPE_SECRET, &pairs, body, 1_700_000_300);
    assert!(diagnosis.valid, "{diagnosis:?}");
    assert_eq!(diagnosis.expected.as_deref(), Some(header.as_str()));
    let diagnosis = check(Scheme::Stripe, STRIPE_SECRET, &pairs, body, 1_699_999_000);
    assert_eq!(parts(&diagnosis), [Part::Timestamp]);
    assert!(diagnosis.findings[0].detail.contains("in the future"));
}

#[test]
fn stripe_mistakes_are_named_by_part() {
    let body = r#"{"id":"evt_1","object":"event"}"#;
    let now = 1_700_000_000;
    // Keyed with the decoded bytes after `whsec_`, as Standard Webhooks would.
    let secret = "whsec_dGVzdF9zZWNyZXRfZm9yX3RoZV9oZWxwZXI=";
    let decoded_key = base64::engine::general_purpose::STANDARD.decode(&secret[6..]).unwrap();
    let header = stripe_header(&decoded_key, now, body);
    let diagnosis = check(Scheme::Stripe, secret, &[("stripe-signature", &header)], body, now);
    assert_eq!(parts(&diagnosis), [Part::Secret]);
    assert!(diagnosis.findings[0].detail.contains("base64-decoded"), "{diagnosis:?}");
    let header = stripe_header(STRIPE_SECRET.as_bytes(), now, body);
    let pretty = "{\n  \"id\": \"evt_1\",\n  \"object\": \"event\"\n}";
    let diagnosis =
        check(Scheme::Stripe, STRIPE_SECRET, &[("stripe-signature", &header)], pretty, now);
    assert_eq!(parts(&diagnosis), [Part::Body]);
    let no_time = format!("v1={}", &header[header.find("v1=").unwrap() + 3..]);
    let diagnosis =
        check(Scheme::Stripe, STRIPE_SECRET, &[("stripe-signature", &no_time)], body, now);
    assert_eq!(parts(&diagnosis), [Part::Header]);
    assert!(diagnosis.findings[0].detail.contains("no `t="));
}
