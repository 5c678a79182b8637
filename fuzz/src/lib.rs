//! Fuzz targets for the router's input paths, and the mutation loop that runs them on stable
//! Rust.
//!
//! Owns the targets ([`targets`]: config parsing and validation, webhook ingest requests,
//! CloudEvents mapping, signature headers, admin JSON bodies, CEL filters), each a function of
//! bytes that panics only on a bug, and [`run`], the loop: it starts from the committed seed
//! corpus (`fuzz/corpus/<target>/`), mutates inputs (bit flips, interesting bytes, dictionary
//! tokens, cuts, copies, splices), and keeps any input whose *outcome* (a target's summary of
//! what happened: which error, which status) was not seen before, so the corpus grows towards
//! new behaviour without compiler instrumentation. A panic is a finding: its input is written
//! to `fuzz/crashes/<target>/`, and once fixed it is copied to `fuzz/regressions/<target>/`,
//! which a test replays. It must not reach the network: targets work in memory and on a
//! temporary store.

pub mod targets;

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One fuzz target: a name, the function under test and the tokens worth inserting.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub name: &'static str,
    /// Runs one input; answers a summary of its outcome (equal outcomes, equal summaries).
    /// Panics only on a bug.
    pub run: fn(&[u8]) -> u64,
    pub dictionary: &'static [&'static str],
    /// Inputs longer than this are cut.
    pub max_len: usize,
}

/// What one target's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub target: &'static str,
    pub executions: u64,
    /// Distinct outcomes seen.
    pub outcomes: usize,
    pub corpus: usize,
    /// Each panic found: the panic message and where its input was written.
    pub crashes: Vec<(String, PathBuf)>,
}

/// A small, fast pseudo-random generator (xorshift64*): reproducible from its seed.
#[derive(Debug, Clone)]
pub struct Random(u64);

impl Random {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: usize) -> usize {
        (self.next_u64() % bound.max(1) as u64) as usize
    }
}

const INTERESTING_BYTES: &[u8] =
    b"\x00\x01\x7f\x80\xff\"\\{}[],:\n\r\t =.-_/%0123456789eE+aZ\xc3\xa9\xf0\x9f";

/// `input` changed by one to four mutations, cut to `max_len`.
pub fn mutate(
    input: &[u8],
    corpus: &[Vec<u8>],
    dictionary: &[&str],
    max_len: usize,
    random: &mut Random,
) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..=random.below(4) {
        let at = random.below(data.len() + 1);
        match random.below(9) {
            0 if !data.is_empty() => {
                let index = random.below(data.len());
                data[index] ^= 1 << random.below(8);
            }
            1 if !data.is_empty() => {
                let index = random.below(data.len());
                data[index] = INTERESTING_BYTES[random.below(INTERESTING_BYTES.len())];
            }
            2 if !dictionary.is_empty() => {
                let token = dictionary[random.below(dictionary.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            3 if !data.is_empty() => {
                let end = (at + 1 + random.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            4 if !data.is_empty() => {
                let start = random.below(data.len());
                let end = (start + 1 + random.below(32)).min(data.len());
                let copy = data[start..end].to_vec();
                data.splice(at..at, copy);
            }
            5 if !corpus.is_empty() => {
                let other = &corpus[random.below(corpus.len())];
                let from = random.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            6 => {
                let count = 1 + random.below(8);
                let bytes: Vec<u8> = (0..count).map(|_| random.next_u64() as u8).collect();
                data.splice(at..at, bytes);
            }
            7 => data.truncate(at),
            _ => {
                // A number that may sit on a boundary.
                let numbers =
                    ["0", "-1", "4294967296", "18446744073709551616", "1e309", "99999999"];
                let number = numbers[random.below(numbers.len())].as_bytes();
                data.splice(at..at, number.iter().copied());
            }
        }
    }
    data.truncate(max_len);
    data
}

/// The committed inputs of `target` under `directory/<target>/`, sorted by name.
pub fn read_inputs(directory: &Path, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(directory.join(target)) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    files.sort();
    files
        .into_iter()
        .filter(|path| path.is_file())
        .filter_map(|path| std::fs::read(&path).ok().map(|bytes| (path, bytes)))
        .collect()
}

/// The panic message of the last panic on this process, kept by [`quiet_panics`].
fn last_panic() -> &'static Mutex<String> {
    static LAST: std::sync::OnceLock<Mutex<String>> = std::sync::OnceLock::new();
    LAST.get_or_init(Mutex::default)
}

/// Replaces the panic hook with one that keeps the message (with its location) instead of
/// printing it: a fuzz run panics on purpose to find out, and reports once.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|at| format!(" at {at}")).unwrap_or_default();
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        if let Ok(mut last) = last_panic().lock() {
            *last = format!("{message}{location}");
        }
    }));
}

/// Runs `input` through `target`: its outcome, or the panic message.
pub fn execute(target: &Target, input: &[u8]) -> Result<u64, String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|_| {
        last_panic().lock().map(|last| last.clone()).unwrap_or_else(|_| "a panic".to_owned())
    })
}

/// Fuzzes `target` for `budget`: seeds from `corpus_dir`, crashes written to `crash_dir`.
/// Stops early after `max_crashes` distinct panics.
pub fn run(
    target: &Target,
    budget: Duration,
    seed: u64,
    corpus_dir: &Path,
    crash_dir: &Path,
) -> Report {
    let mut random = Random::new(seed ^ hash_of(target.name));
    let mut corpus: Vec<Vec<u8>> =
        read_inputs(corpus_dir, target.name).into_iter().map(|(_, bytes)| bytes).collect();
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut outcomes = HashSet::new();
    let mut report =
        Report { target: target.name, executions: 0, outcomes: 0, corpus: 0, crashes: Vec::new() };
    let mut messages = HashSet::new();
    let started = Instant::now();
    let mut check = |input: &[u8], corpus: &mut Vec<Vec<u8>>, report: &mut Report| {
        report.executions += 1;
        match execute(target, input) {
            Ok(outcome) => {
                if outcomes.insert(outcome) && corpus.len() < MAX_CORPUS {
                    corpus.push(input.to_vec());
                }
            }
            Err(message) => {
                // One file per distinct panic site and message.
                if messages.insert(message.clone()) {
                    let path = crash_dir.join(target.name).join(format!("{:016x}", hash_of(input)));
                    let written = std::fs::create_dir_all(crash_dir.join(target.name))
                        .and_then(|()| std::fs::write(&path, input));
                    if let Err(error) = written {
                        eprintln!("cannot write `{}`: {error}", path.display());
                    }
                    report.crashes.push((message, path));
                }
            }
        }
    };
    for input in corpus.clone() {
        check(&input, &mut corpus, &mut report);
    }
    while started.elapsed() < budget && report.crashes.len() < MAX_CRASHES {
        let base = corpus[random.below(corpus.len())].clone();
        let input = mutate(&base, &corpus, target.dictionary, target.max_len, &mut random);
        check(&input, &mut corpus, &mut report);
    }
    report.outcomes = outcomes.len();
    report.corpus = corpus.len();
    report
}

/// The most inputs a run keeps in memory.
const MAX_CORPUS: usize = 4096;

/// A run stops looking once it found this many distinct panics.
const MAX_CRASHES: usize = 5;

/// A stable hash (within one build) of anything hashable.
pub fn hash_of(value: impl Hash) -> u64 {
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// An outcome summary from text: only what comes before the first quote (backtick or
/// quotation mark) of its first line, without digits, and at most six words, so that input
/// echoed in an error message does not count as new behaviour.
pub fn outcome_of(text: &str) -> u64 {
    let line = text.lines().next().unwrap_or_default();
    let before_quote = line.split(['`', '"', '\'']).next().unwrap_or_default();
    let kept: String = before_quote.chars().filter(|c| !c.is_ascii_digit()).collect();
    let words: Vec<&str> = kept.split_whitespace().take(6).collect();
    hash_of(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_within_the_length_limit_and_change_the_input() {
        let mut random = Random::new(7);
        let corpus = vec![b"{\"a\":1}".to_vec()];
        let mut changed = 0;
        for _ in 0..1_000 {
            let input = mutate(b"hello world", &corpus, &["token"], 16, &mut random);
            assert!(input.len() <= 16);
            changed += usize::from(input != b"hello world");
        }
        assert!(changed > 900, "{changed} of 1000 changed");
    }

    #[test]
    fn outcomes_ignore_what_the_input_put_in_the_message() {
        assert_eq!(
            outcome_of("unknown field `abc`, expected `url` at line 3"),
            outcome_of("unknown field `xyz`, expected `url` at line 9")
        );
        assert_ne!(outcome_of("unknown field `a`"), outcome_of("missing field `a`"));
    }

    #[test]
    fn a_panicking_target_is_reported_with_its_input() {
        fn bad(input: &[u8]) -> u64 {
            assert!(!input.starts_with(b"boom"), "found boom");
            0
        }
        quiet_panics();
        let target = Target { name: "bad", run: bad, dictionary: &["boom"], max_len: 64 };
        let crashes = tempfile::tempdir().unwrap();
        let report = run(&target, Duration::from_secs(2), 1, Path::new("none"), crashes.path());
        assert!(!report.crashes.is_empty(), "{report:?}");
        let (message, path) = &report.crashes[0];
        assert!(message.contains("found boom"), "{message}");
        assert!(std::fs::read(path).unwrap().starts_with(b"boom"));
    }
}
