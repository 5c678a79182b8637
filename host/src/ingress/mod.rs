//! Ingresses: the protocols events arrive by. Each maps its protocol onto
//! [`crate::ingest::Ingestor`] and the answer back onto its protocol.

pub mod http;
pub mod nats;
pub mod publish;
