//! Signature headers: parsing keys and checking any `webhook-signature` value never panics,
//! and a header the router signs always verifies (same key, id, time and body).

use switchyard::signing::{self, SigningKey, VerifyingKey};

use crate::{Target, hash_of, outcome_of};

pub const TARGET: Target = Target {
    name: "signature",
    run,
    dictionary: &[
        "v1,",
        "v1a,",
        "v2,",
        " ",
        "whsec_",
        "whpk_",
        "whsk_",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "=",
        "==",
        "\n",
        "+",
        "/",
        "-",
        "_",
    ],
    max_len: 1024,
};

const KEY: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Input: a header value, a newline, a key's text, a newline, the body.
fn run(input: &[u8]) -> u64 {
    let mut parts = input.splitn(3, |&byte| byte == b'\n');
    let header = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let key_text = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let key = SigningKey::parse(KEY).expect("the fixed key parses");
    let verifying = [key.verifying_key()];
    let now = 1_700_000_000;
    let checked = signing::verify(&verifying, "msg_1", now, body, &header, now, 300);
    // What the router signs, it verifies.
    let signed = signing::signature_header([&key], "msg_1", now, body);
    let again = signing::verify(&verifying, "msg_1", now, body, &signed, now, 300);
    assert!(again.is_ok(), "a signature the router made does not verify: {again:?}");
    let parsed = SigningKey::parse(&key_text).map(|key| key.version());
    let public = VerifyingKey::parse(&key_text).map(|key| key.version());
    hash_of((
        checked.map_err(|error| outcome_of(&error.to_string())),
        parsed.map_err(|error| outcome_of(&error.to_string())),
        public.map_err(|error| outcome_of(&error.to_string())),
    ))
}
