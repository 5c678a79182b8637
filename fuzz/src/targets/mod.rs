//! Every fuzz target, by name. Each is a function of bytes that panics only on a bug (a
//! broken invariant is asserted), and answers a summary of its outcome for the loop.

mod admin_json;
mod cloudevents;
mod config;
mod filter;
mod ingest;
mod signature;

use crate::Target;

/// Every target, in the order a full run takes them.
pub const ALL: &[Target] = &[
    config::TARGET,
    ingest::TARGET,
    cloudevents::TARGET,
    signature::TARGET,
    admin_json::TARGET,
    filter::TARGET,
];

/// The target named `name`.
pub fn named(name: &str) -> Option<&'static Target> {
    ALL.iter().find(|target| target.name == name)
}

/// Header lines (`name: value`) up to the first empty line, then the rest: the input format
/// of the targets that take a request. Lines without a colon are skipped; names are lower-cased
/// as the HTTP parser gives them.
pub fn split_request(input: &[u8]) -> (Vec<(String, String)>, &[u8]) {
    let (head, body) = match input.windows(2).position(|pair| pair == b"\n\n") {
        Some(at) => (&input[..at], &input[at + 2..]),
        None => (input, &[][..]),
    };
    let headers = String::from_utf8_lossy(head)
        .lines()
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    (headers, body)
}
