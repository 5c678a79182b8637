//! Traffic control: how fast events may come in and how hard an endpoint may be pushed.
//!
//! Owns the pure cores, each a plain type with time passed in (no clock is read here):
//! [`rate`] (the `"100/s"` rate text), [`bucket`] (the token bucket both ingest limits and
//! endpoint delivery rates run on), [`ingest`] (buckets per source or per client, bounded in
//! memory, and which address a request comes from), [`breaker`] (an endpoint's circuit
//! breaker), [`adaptive`] (AIMD of an endpoint's in-flight limit) and [`endpoint`] (all of an
//! endpoint's controls together: when its next attempt may start, and what an outcome
//! changes). Must not: do I/O, sleep, or know axum, reqwest or the store; the ingress handlers
//! and the delivery worker apply what these types decide.

pub mod adaptive;
pub mod breaker;
pub mod bucket;
pub mod endpoint;
pub mod ingest;
pub mod ordering;
pub mod rate;
