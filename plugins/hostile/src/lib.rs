//! `hostile`: a TEST FIXTURE that misbehaves on purpose. Never bind it to real traffic.
//!
//! The host's tests load it to check that every limit and every invalid answer is contained:
//! deadlines, memory caps, output and split limits, traps, log caps, invalid verdicts, secret
//! isolation and the capability-free sandbox. The config key `mode` picks the behaviour:
//!
//! | `mode` | behaviour |
//! |---|---|
//! | `loop` | spins forever (the epoch deadline must stop it) |
//! | `memory-bomb` | allocates and touches 1 MiB blocks until memory growth is refused |
//! | `huge-output` | `modify` with a 2 MiB body (over the 1 MiB output limit) |
//! | `too-many-splits` | `split` into 101 events (over the limit of 100) |
//! | `panic` | panics (a trap, as plugins are built with `panic = "abort"`) |
//! | `log-spam` | logs 10,000 lines of 100 bytes, then `pass` |
//! | `bad-reject-status` | `reject` with status 200 (outside 400–499) |
//! | `reject-everywhere` | `reject` 403 `forbidden`, whatever the stage |
//! | `split-two` | `split` into two copies of the event, bodies `{"part":1}` and `{"part":2}` |
//! | `snoop-secret` | uses the secret named by config key `secret` (below) |
//! | `read-file` | reads a file and the environment (below) |
//! | `retry` | `failure::retry("not ready")` |
//! | `fatal` | `failure::fatal("boom")` |
//! | `count-calls` | `modify` with the body `{"calls":N}`, N counting this instance's calls |
//! | anything else, or none | `pass` |
//!
//! `snoop-secret` calls `hmac-sha256-verify` with that secret: `pass` if the host answers, and
//! `failure::fatal("<crypto-error case>: <its text>")`, e.g. `not-allowed: github`, if it refuses.
//!
//! `read-file` reads `/etc/passwd`, then the environment: `failure::fatal("read: <error>")` when
//! the file cannot be read and the environment is empty (what the host's sandbox must give);
//! otherwise `modify` setting the header `x-leaked` to the first 20 bytes of the file, or of the
//! first `NAME=value` of the environment.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};

use switchyard_sdk::crypto::{self, CryptoError};
use switchyard_sdk::{Event, Failure, Patch, Rejection, Verdict, host};

#[switchyard_sdk::plugin]
fn hostile(event: Event) -> Result<Verdict, Failure> {
    match host::config("mode").as_deref().unwrap_or_default() {
        "loop" => spin(),
        "memory-bomb" => exhaust_memory(),
        "huge-output" => Ok(Verdict::Modify(Patch::new().with_body(vec![b'x'; 2 << 20]))),
        "too-many-splits" => Ok(Verdict::Split(parts(&event, 101))),
        "panic" => panic!("hostile plugin panicking on purpose"),
        "log-spam" => {
            let line = "x".repeat(100);
            for _ in 0..10_000 {
                host::info(&line);
            }
            Ok(Verdict::Pass)
        }
        "bad-reject-status" => Ok(Rejection::new(200, "ok", "a rejection must be a 4xx").into()),
        "reject-everywhere" => Ok(Rejection::new(403, "forbidden", "rejected everywhere").into()),
        "split-two" => Ok(Verdict::Split(parts(&event, 2))),
        "snoop-secret" => snoop_secret(),
        "read-file" => read_file(),
        "retry" => Err(Failure::retry("not ready")),
        "fatal" => Err(Failure::fatal("boom")),
        "count-calls" => {
            // Instance state: a fresh instance always answers 1, a warm one counts up.
            static CALLS: AtomicU32 = AtomicU32::new(0);
            let calls = CALLS.fetch_add(1, Ordering::Relaxed) + 1;
            Ok(Verdict::Modify(Patch::new().with_body(format!(r#"{{"calls":{calls}}}"#))))
        }
        _ => Ok(Verdict::Pass),
    }
}

/// Loops forever doing work the optimiser cannot remove.
fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Allocates and writes 1 MiB blocks, keeping them all, until the allocator aborts.
fn exhaust_memory() -> ! {
    let mut blocks = Vec::new();
    loop {
        blocks.push(black_box(vec![1u8; 1 << 20]));
    }
}

/// `count` copies of `event` with the bodies `{"part":1}` … `{"part":count}`.
fn parts(event: &Event, count: usize) -> Vec<Event> {
    (1..=count)
        .map(|part| {
            let mut copy = event.clone();
            copy.set_body(format!(r#"{{"part":{part}}}"#));
            copy
        })
        .collect()
}

fn snoop_secret() -> Result<Verdict, Failure> {
    let secret = host::config("secret").unwrap_or_default();
    match crypto::hmac_sha256_verify(&secret, b"snoop", &[0; 32]) {
        Ok(_) => Ok(Verdict::Pass),
        Err(error) => Err(Failure::fatal(match error {
            CryptoError::UnknownSecret(text) => format!("unknown-secret: {text}"),
            CryptoError::NotAllowed(text) => format!("not-allowed: {text}"),
            CryptoError::BadInput(text) => format!("bad-input: {text}"),
        })),
    }
}

fn read_file() -> Result<Verdict, Failure> {
    let leaked = match std::fs::read_to_string("/etc/passwd") {
        Ok(text) => text,
        Err(error) => match std::env::vars().next() {
            Some((name, value)) => format!("{name}={value}"),
            None => return Err(Failure::fatal(format!("read: {error}"))),
        },
    };
    let prefix = String::from_utf8_lossy(&leaked.as_bytes()[..leaked.len().min(20)]);
    Ok(Verdict::Modify(Patch::new().with_header("x-leaked", prefix)))
}
