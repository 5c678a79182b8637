//! Reads of delivery bodies: one thread, one read connection, every waiting read answered in
//! one read transaction.
//!
//! Owns the read of a body that was not kept in memory (a due-queue past its body budget or
//! its job limit, a retry, `curl` in the admin API). When a router falls behind, every attempt
//! reads its body back. Run as a blocking task each, those reads took a pooled connection each,
//! and with more reads at once than the pool keeps idle, each opened its own (a file open, the
//! schema parsed, a page cache allocated): an attempt then cost 2.6 times the CPU, the router
//! fell further behind, and stayed in that regime. Here the reads queue to one thread whose
//! connection stays open; it takes all that are waiting at once, so under load the thread runs
//! from one batch to the next without being woken, and the per-statement read lock is taken
//! once per batch.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::reader::Reader;
use crate::store::{DeliveryId, Payload, StoreError};

/// The most reads answered in one transaction: a snapshot held longer keeps the writer's
/// checkpoint from finishing.
const MAX_BATCH: usize = 256;

type Answer = Result<Option<Payload>, StoreError>;

struct Read {
    delivery: DeliveryId,
    answer: oneshot::Sender<Answer>,
}

/// The body-reading thread; stops when dropped, after the reads already queued.
#[derive(Debug)]
pub(super) struct BodyReads {
    queue: Option<mpsc::Sender<Read>>,
    thread: Option<JoinHandle<()>>,
}

impl BodyReads {
    pub fn start(path: PathBuf) -> std::io::Result<Self> {
        let (queue, reads) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("store-bodies".into())
            .spawn(move || run(&path, &reads))?;
        Ok(Self { queue: Some(queue), thread: Some(thread) })
    }

    /// The body, content type and subject of `delivery`; `None` for an unknown delivery.
    pub async fn read(&self, delivery: DeliveryId) -> Answer {
        let (answer, answered) = oneshot::channel();
        let queue = self.queue.as_ref().ok_or(StoreError::Closed)?;
        queue.send(Read { delivery, answer }).map_err(|_| StoreError::Closed)?;
        answered.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for BodyReads {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(path: &std::path::Path, reads: &mpsc::Receiver<Read>) {
    let mut reader: Option<Reader> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = reads.recv() {
        batch.push(first);
        batch.extend(reads.try_iter().take(MAX_BATCH - 1));
        // Opened at the first read, and again after a failure (a file replaced meanwhile).
        let connection = match reader.take() {
            Some(open) => Ok(open),
            None => Reader::open(path),
        };
        match connection {
            Ok(open) => {
                let healthy = answer_batch(&open, &mut batch);
                if healthy {
                    reader = Some(open);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for read in batch.drain(..) {
                    let _ = read.answer.send(Err(StoreError::Read(message.clone().into())));
                }
            }
        }
    }
}

/// Answers every read of `batch` (emptying it) inside one read transaction; answers false when
/// the connection failed and should be opened again.
fn answer_batch(reader: &Reader, batch: &mut Vec<Read>) -> bool {
    let snapshot = reader.snapshot();
    let mut healthy = snapshot.is_ok();
    for read in batch.drain(..) {
        if read.answer.is_closed() {
            continue;
        }
        let answer = reader.payload(read.delivery);
        healthy &= answer.is_ok();
        let _ = read.answer.send(answer);
    }
    if let Ok(snapshot) = snapshot {
        healthy &= snapshot.commit().is_ok();
    }
    healthy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_of_a_missing_database_fail_and_the_next_one_opens_it_again() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("store.db");
        let bodies = BodyReads::start(path.clone()).unwrap();
        let failed = bodies.read(DeliveryId::new(1)).await;
        assert!(matches!(failed, Err(StoreError::Open { .. } | StoreError::Read(_))), "{failed:?}");
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch(
                "CREATE TABLE payloads (id INTEGER PRIMARY KEY, body BLOB); \
                 CREATE TABLE events (seq INTEGER PRIMARY KEY, headers TEXT); \
                 CREATE TABLE deliveries (id INTEGER PRIMARY KEY, payload_id INTEGER, \
                   event_seq INTEGER, content_type TEXT, subject TEXT); \
                 INSERT INTO payloads VALUES (1, x'7b7d'); \
                 INSERT INTO events VALUES (1, '[[\"content-type\",\"application/json\"]]'); \
                 INSERT INTO deliveries VALUES (7, 1, 1, NULL, NULL);",
            )
            .unwrap();
        let payload = bodies.read(DeliveryId::new(7)).await.unwrap().expect("a body");
        assert_eq!(&payload.body[..], b"{}");
        assert_eq!(payload.content_type.as_deref(), Some("application/json"));
        assert!(bodies.read(DeliveryId::new(8)).await.unwrap().is_none());
    }
}
