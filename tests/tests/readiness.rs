//! Readiness tells the truth about the store: while it cannot commit, `/readyz` answers 503
//! with the reason and ingest answers 503; the repeated error is logged once per interval; once
//! commits succeed, both recover.
//!
//! The failure is real and needs no privileges: another process (Python's `sqlite3`, as an
//! operator's `sqlite3` shell or a backup tool would) holds the database's write lock, so the
//! router's writer gets "database is locked" after its busy timeout. Releasing the lock is
//! the recovery. Nothing here reads the database; the lock is the only thing the test does to
//! it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use switchyard_e2e::{TestHost, tools_python};

const SOURCES: &str = r#"
[sources.hooks]
type = "http"
"#;

/// A process holding the write lock of the database at `path` until dropped.
struct WriteLock(std::process::Child);

impl WriteLock {
    fn take(path: &std::path::Path) -> Self {
        let script = "import sqlite3, sys\n\
                      connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
                      connection.execute('BEGIN IMMEDIATE')\n\
                      print('locked', flush=True)\n\
                      sys.stdin.read()\n";
        let mut child = Command::new(tools_python())
            .args(["-c", script])
            .arg(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("piped")).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "locked");
        Self(child)
    }

    fn release(mut self) {
        drop(self.0.stdin.take());
        self.0.wait().expect("the lock holder exits");
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_the_store_cannot_commit_and_errors_are_not_repeated() {
    let host = TestHost::start("", SOURCES).await.unwrap();
    let client = reqwest::Client::new();
    let post = || async {
        client.post(host.url("/webhooks/hooks")).body("{}").send().await.unwrap().status()
    };
    assert_eq!(post().await, StatusCode::ACCEPTED);
    assert_eq!(client.get(host.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);

    let lock = WriteLock::take(&host.data_dir().join("switchyard.db"));
    // Two refused requests, one after the other: the second's errors are within the interval.
    assert_eq!(post().await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(post().await, StatusCode::SERVICE_UNAVAILABLE);
    let readiness = client.get(host.url("/readyz")).send().await.unwrap();
    assert_eq!(readiness.status(), StatusCode::SERVICE_UNAVAILABLE);
    let answer: serde_json::Value = readiness.json().await.unwrap();
    assert_eq!(answer["detail"], "the store cannot commit: database is locked", "{answer}");
    let lines = host.logs.snapshot();
    let not_stored = lines.iter().filter(|line| line.contains("event not stored")).count();
    let rejected = lines.iter().filter(|line| line.contains("store rejected a write")).count();
    assert_eq!((not_stored, rejected), (1, 1), "each error once:\n{}", lines.join("\n"));

    lock.release();
    assert_eq!(post().await, StatusCode::ACCEPTED);
    assert_eq!(client.get(host.url("/readyz")).send().await.unwrap().status(), StatusCode::OK);
    assert!(
        host.logs
            .wait_for(Duration::from_secs(5), |line| line
                .contains("store commits succeed again")
                .then_some(()))
            .is_some()
    );
}
