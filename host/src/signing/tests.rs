//! Tests of Standard Webhooks signing and verification: the published vectors, key formats,
//! tolerance edges and header shapes.

use super::*;

/// Published Standard Webhooks vectors (shared/reference/vectors.md).
const VECTORS: [(&str, &str, i64, &str, &str); 2] = [
    (
        "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
        "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
        1649367553,
        r#"{"email":"test@example.com","username":"test_user"}"#,
        "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
    ),
    (
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        r#"{"test": 2432232314}"#,
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    ),
];

/// The `v1a` answer published by the Standard Webhooks Go library's tests: this seed
/// (base64 of 32 ASCII bytes) signs the second vector's message to exactly this value.
const ED25519_SEED: &str = "VEVTVFNJR05JTkdLRVlET05PVFVTRVRISVNGT1JBTlk=";
const ED25519_EXPECTED: &str = "v1a,tQ9V2XOqn7jL/DQenEFpqIugdBVtiMmER5mhSkXBNwM0mkATuDe6K\
                                YYUuxqtaiHeYGb7KaaBRdM5WqyeFiL8Ag==";

const TOLERANCE: u64 = 300;

fn signing(text: &str) -> SigningKey {
    SigningKey::parse(text).unwrap()
}

fn ed25519_key() -> SigningKey {
    signing(&format!("whsk_{ED25519_SEED}"))
}

#[test]
fn published_vectors_sign_exactly() {
    for (secret, message_id, timestamp, body, expected) in VECTORS {
        let header = signature_header(&[signing(secret)], message_id, timestamp, body.as_ref());
        assert_eq!(header, expected, "secret {secret}");
    }
}

#[test]
fn published_vectors_verify() {
    for (secret, message_id, timestamp, body, expected) in VECTORS {
        let key = VerifyingKey::parse(secret).unwrap();
        let verdict =
            verify(&[key], message_id, timestamp, body.as_ref(), expected, timestamp, 300);
        assert_eq!(verdict, Ok(()), "secret {secret}");
    }
}

#[test]
fn whsk_payload_is_the_32_byte_seed() {
    let (_, message_id, timestamp, body, _) = VECTORS[1];
    let header = signature_header(&[ed25519_key()], message_id, timestamp, body.as_bytes());
    assert_eq!(header, ED25519_EXPECTED);
}

#[test]
fn rotation_signs_with_every_key_in_order() {
    let (first, message_id, timestamp, body, first_expected) = VECTORS[0];
    let second = VECTORS[1].0;
    let alone = |key: &SigningKey| {
        signature_header(std::slice::from_ref(key), message_id, timestamp, body.as_bytes())
    };
    let cases = [
        (vec![signing(first), signing(second)], ["v1", "v1"]),
        (vec![ed25519_key(), signing(first)], ["v1a", "v1"]),
        (vec![signing(first), ed25519_key()], ["v1", "v1a"]),
    ];
    for (keys, versions) in cases {
        let header = signature_header(&keys, message_id, timestamp, body.as_bytes());
        let entries: Vec<&str> = header.split(' ').collect();
        let expected: Vec<String> = keys.iter().map(alone).collect();
        assert_eq!(entries, expected, "{versions:?}");
        for (entry, version) in entries.iter().zip(versions) {
            assert_eq!(entry.split_once(',').unwrap().0, version, "{header}");
        }
    }
    let both = signature_header(
        &[signing(first), signing(second)],
        message_id,
        timestamp,
        body.as_bytes(),
    );
    assert!(both.starts_with(&format!("{first_expected} v1,")), "{both}");
    assert!(!both.ends_with(first_expected), "{both}");
    assert_eq!(signature_header([], message_id, timestamp, body.as_bytes()), "");
}

#[test]
fn ed25519_round_trip_and_tampering() {
    let key = SigningKey::from_ed25519_seed(&[7; 32]);
    let public = VerifyingKey::parse(&key.public_key().unwrap()).unwrap();
    let stranger = SigningKey::from_ed25519_seed(&[8; 32]).verifying_key();
    let now = 1_700_000_000;
    let header = signature_header(&[key], "msg_1", now, br#"{"a":1}"#);
    let mismatch = Err(VerifyError::NoMatchingSignature);
    let cases = [
        ("untouched", &public, "msg_1", now, r#"{"a":1}"#, Ok(())),
        ("tampered body", &public, "msg_1", now, r#"{"a":2}"#, mismatch.clone()),
        ("reformatted body", &public, "msg_1", now, r#"{"a": 1}"#, mismatch.clone()),
        ("other message id", &public, "msg_2", now, r#"{"a":1}"#, mismatch.clone()),
        ("other timestamp", &public, "msg_1", now + 1, r#"{"a":1}"#, mismatch.clone()),
        ("other public key", &stranger, "msg_1", now, r#"{"a":1}"#, mismatch),
    ];
    for (name, verifying, message_id, timestamp, body, expected) in cases {
        let verdict = verify(
            std::slice::from_ref(verifying),
            message_id,
            timestamp,
            body.as_bytes(),
            &header,
            now,
            TOLERANCE,
        );
        assert_eq!(verdict, expected, "{name}");
    }
}

#[test]
fn verifying_key_of_a_signing_key_checks_its_signatures() {
    let (secret, message_id, timestamp, body, _) = VECTORS[0];
    for key in [signing(secret), ed25519_key()] {
        let header =
            signature_header(std::slice::from_ref(&key), message_id, timestamp, body.as_bytes());
        let verifying = key.verifying_key();
        assert_eq!(verifying.version(), key.version());
        let verdict = verify(
            &[verifying],
            message_id,
            timestamp,
            body.as_bytes(),
            &header,
            timestamp,
            TOLERANCE,
        );
        assert_eq!(verdict, Ok(()), "{key:?}");
    }
}

#[test]
fn tolerance_edges() {
    let (secret, message_id, timestamp, body, header) = VECTORS[0];
    let key = VerifyingKey::parse(secret).unwrap();
    let tolerance = 300_i64;
    let cases = [
        ("same second", timestamp, Ok(())),
        ("exactly the tolerance old", timestamp + tolerance, Ok(())),
        (
            "one second too old",
            timestamp + tolerance + 1,
            Err(VerifyError::TimestampTooOld { age_seconds: 301, tolerance_seconds: 300 }),
        ),
        ("exactly the tolerance ahead", timestamp - tolerance, Ok(())),
        (
            "one second too far ahead",
            timestamp - tolerance - 1,
            Err(VerifyError::TimestampInFuture { ahead_seconds: 301, tolerance_seconds: 300 }),
        ),
    ];
    for (name, now, expected) in cases {
        let verdict = verify(
            std::slice::from_ref(&key),
            message_id,
            timestamp,
            body.as_bytes(),
            header,
            now,
            300,
        );
        assert_eq!(verdict, expected, "{name}");
    }
}

#[test]
fn extreme_timestamps_do_not_overflow() {
    let key = VerifyingKey::parse(VECTORS[0].0).unwrap();
    let too_old = verify(std::slice::from_ref(&key), "m", i64::MIN, b"", "v1,AAAA", i64::MAX, 300);
    assert_eq!(
        too_old,
        Err(VerifyError::TimestampTooOld { age_seconds: u64::MAX, tolerance_seconds: 300 })
    );
    // The widest tolerance lets any timestamp through to the signature check.
    let ahead = verify(&[key], "m", i64::MAX, b"", "v1,AAAA", i64::MIN, u64::MAX);
    assert_eq!(ahead, Err(VerifyError::NoMatchingSignature));
}

#[test]
fn header_shapes() {
    let (secret, message_id, timestamp, body, good) = VECTORS[0];
    let key = VerifyingKey::parse(secret).unwrap();
    let good_payload = good.trim_start_matches("v1,");
    let unpadded = format!("v1,{}", good_payload.trim_end_matches('='));
    let cases: Vec<(String, Result<(), VerifyError>)> = vec![
        (String::new(), Err(VerifyError::MissingSignature)),
        ("  \t ".into(), Err(VerifyError::MissingSignature)),
        ("garbage".into(), Err(VerifyError::MalformedSignatureHeader)),
        ("v1, ,x".into(), Err(VerifyError::MalformedSignatureHeader)),
        (",abc".into(), Err(VerifyError::MalformedSignatureHeader)),
        ("v1,AAAA".into(), Err(VerifyError::NoMatchingSignature)),
        ("v1,not-base64!".into(), Err(VerifyError::NoMatchingSignature)),
        (format!("v1a,{good_payload}"), Err(VerifyError::NoMatchingSignature)),
        (format!("v2,{good_payload}"), Err(VerifyError::NoMatchingSignature)),
        (good.into(), Ok(())),
        (format!("  {good}  "), Ok(())),
        (format!("v2,xyz v1,AAAA   {good}"), Ok(())),
        (format!("garbage {good}"), Ok(())),
        (unpadded, Ok(())),
    ];
    for (header, expected) in cases {
        let verdict = verify(
            std::slice::from_ref(&key),
            message_id,
            timestamp,
            body.as_bytes(),
            &header,
            timestamp,
            TOLERANCE,
        );
        assert_eq!(verdict, expected, "header {header:?}");
    }
}

#[test]
fn no_keys_match_nothing() {
    let (_, message_id, timestamp, body, good) = VECTORS[0];
    let verdict = verify(&[], message_id, timestamp, body.as_bytes(), good, timestamp, 300);
    assert_eq!(verdict, Err(VerifyError::NoMatchingSignature));
}

/// `whsec_` followed by the base64 of `length` zero bytes.
fn symmetric_of_length(length: usize) -> String {
    format!("whsec_{}", STANDARD.encode(vec![0_u8; length]))
}

#[test]
fn signing_key_parse_accepts() {
    let cases = [
        ("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".to_owned(), "v1"),
        ("  whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD\n".to_owned(), "v1"),
        (symmetric_of_length(24), "v1"),
        (symmetric_of_length(64), "v1"),
        (symmetric_of_length(64).trim_end_matches('=').to_owned(), "v1"),
        (format!("whsk_{ED25519_SEED}"), "v1a"),
        (format!("whsk_{}", ED25519_SEED.trim_end_matches('=')), "v1a"),
    ];
    for (text, version) in cases {
        let key = SigningKey::parse(&text).unwrap_or_else(|error| panic!("{text}: {error}"));
        assert_eq!(key.version(), version, "{text}");
    }
}

#[test]
fn signing_key_parse_errors() {
    let wrong_length =
        |prefix, actual, expected| KeyError::WrongLength { prefix, actual, expected };
    let cases: Vec<(String, KeyError)> = vec![
        (String::new(), KeyError::Empty { role: KeyRole::Signing }),
        ("  \n".into(), KeyError::Empty { role: KeyRole::Signing }),
        ("It's a Secret to Everybody".into(), KeyError::UnknownPrefix { role: KeyRole::Signing }),
        (
            "WHSEC_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into(),
            KeyError::UnknownPrefix { role: KeyRole::Signing },
        ),
        ("whpk_AAAA".into(), KeyError::OtherHalf { role: KeyRole::Signing }),
        ("whsec_".into(), KeyError::MissingKeyMaterial { prefix: "whsec_" }),
        ("whsk_".into(), KeyError::MissingKeyMaterial { prefix: "whsk_" }),
        ("whsec_not base64!".into(), KeyError::InvalidBase64 { prefix: "whsec_" }),
        ("whsk_%%%%".into(), KeyError::InvalidBase64 { prefix: "whsk_" }),
        (symmetric_of_length(23), wrong_length("whsec_", 23, SYMMETRIC_EXPECTED)),
        (symmetric_of_length(65), wrong_length("whsec_", 65, SYMMETRIC_EXPECTED)),
        (
            format!("whsk_{}", STANDARD.encode([1_u8; 64])),
            wrong_length("whsk_", 64, ED25519_SECRET_EXPECTED),
        ),
        (
            format!("whsk_{}", STANDARD.encode([1_u8; 31])),
            wrong_length("whsk_", 31, ED25519_SECRET_EXPECTED),
        ),
    ];
    for (text, expected) in cases {
        let error = SigningKey::parse(&text).unwrap_err();
        assert_eq!(error, expected, "{text:?}");
    }
}

#[test]
fn symmetric_keys_from_bytes_follow_the_same_length_rule() {
    let cases = [(23, false), (24, true), (32, true), (64, true), (65, false)];
    for (length, accepted) in cases {
        let parsed = SigningKey::from_symmetric_bytes(&vec![9_u8; length]);
        assert_eq!(parsed.is_ok(), accepted, "{length} bytes");
    }
}

#[test]
fn verifying_key_parse_errors() {
    let public = ed25519_key().public_key().unwrap();
    assert!(public.starts_with("whpk_"), "{public}");
    assert!(VerifyingKey::parse(&public).is_ok());
    // y = 2 is not the y-coordinate of any point on the curve, so it does not decompress.
    let mut off_curve_bytes = [0_u8; 32];
    off_curve_bytes[0] = 2;
    let off_curve = format!("whpk_{}", STANDARD.encode(off_curve_bytes));
    let cases: Vec<(String, KeyError)> = vec![
        (String::new(), KeyError::Empty { role: KeyRole::Verifying }),
        ("secret".into(), KeyError::UnknownPrefix { role: KeyRole::Verifying }),
        (format!("whsk_{ED25519_SEED}"), KeyError::OtherHalf { role: KeyRole::Verifying }),
        ("whpk_".into(), KeyError::MissingKeyMaterial { prefix: "whpk_" }),
        ("whpk_@@@@".into(), KeyError::InvalidBase64 { prefix: "whpk_" }),
        (
            "whpk_AAAA".into(),
            KeyError::WrongLength { prefix: "whpk_", actual: 3, expected: ED25519_PUBLIC_EXPECTED },
        ),
        (
            "whsec_AAAA".into(),
            KeyError::WrongLength { prefix: "whsec_", actual: 3, expected: SYMMETRIC_EXPECTED },
        ),
        (off_curve, KeyError::InvalidPublicKey),
    ];
    for (text, expected) in cases {
        let error = VerifyingKey::parse(&text).unwrap_err();
        assert_eq!(error, expected, "{text:?}");
    }
}

#[test]
fn error_messages_name_what_was_expected() {
    let cases = [
        (
            SigningKey::parse("plain").unwrap_err().to_string(),
            "a key must start with `whsec_` (HMAC) or `whsk_` (ed25519)",
        ),
        (
            SigningKey::parse("whsec_AAAA").unwrap_err().to_string(),
            "the `whsec_` key decodes to 3 bytes; expected 24 to 64 bytes",
        ),
        (
            SigningKey::parse("whsk_AAAA").unwrap_err().to_string(),
            "the `whsk_` key decodes to 3 bytes; expected 32 bytes (an ed25519 seed)",
        ),
    ];
    for (actual, expected) in cases {
        assert_eq!(actual, expected);
    }
}

#[test]
fn debug_never_shows_key_material() {
    let secret = "C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    let keys = [signing(&format!("whsec_{secret}")), ed25519_key()];
    for key in &keys {
        let shown = format!("{key:?} {:?}", key.verifying_key());
        assert!(shown.contains("<redacted>"), "{shown}");
        for needle in [secret, ED25519_SEED, "84, 69, 83"] {
            assert!(!shown.contains(needle), "{shown}");
        }
    }
    let public = ed25519_key().public_key().unwrap();
    let shown = format!("{:?}", VerifyingKey::parse(&public).unwrap());
    assert!(!shown.contains(public.trim_start_matches("whpk_")), "{shown}");
}
