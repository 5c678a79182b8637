//! The live tail: accepted events, as they are committed, for whoever watches (the
//! dashboard's live page).
//!
//! Owns [`Tail`], a bounded broadcast: publishing never waits and never fails, and a watcher
//! that falls more than [`CAPACITY`] behind is told how many it missed (it then reads the
//! store). Must not: hold anything durable; the store is the record, this only says "now".

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::event::EventId;

/// Notices kept for slow watchers.
pub const CAPACITY: usize = 1024;

/// An event just committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: EventId,
    pub source: String,
    pub event_type: String,
    /// Unix ms.
    pub received_at: u64,
    pub body_size: u64,
    /// Deliveries it made (to endpoints, splits included).
    pub deliveries: usize,
}

/// The broadcast; clones share it.
#[derive(Debug, Clone)]
pub struct Tail {
    sender: broadcast::Sender<Arc<Accepted>>,
}

impl Default for Tail {
    fn default() -> Self {
        Self::new()
    }
}

impl Tail {
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        Self { sender }
    }

    /// Tells every watcher; with none, nothing happens.
    pub fn publish(&self, accepted: Accepted) {
        let _ = self.sender.send(Arc::new(accepted));
    }

    /// Notices from now on.
    pub fn watch(&self) -> broadcast::Receiver<Arc<Accepted>> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepted(n: u64) -> Accepted {
        Accepted {
            id: EventId::generate(),
            source: "github".into(),
            event_type: "github.push".into(),
            received_at: n,
            body_size: 2,
            deliveries: 1,
        }
    }

    #[tokio::test]
    async fn watchers_see_what_is_published_after_they_start() {
        let tail = Tail::new();
        tail.publish(accepted(1));
        let mut watcher = tail.watch();
        tail.publish(accepted(2));
        assert_eq!(watcher.recv().await.unwrap().received_at, 2);
    }

    #[tokio::test]
    async fn a_slow_watcher_learns_how_many_it_missed() {
        let tail = Tail::new();
        let mut watcher = tail.watch();
        for n in 0..(CAPACITY as u64 + 3) {
            tail.publish(accepted(n));
        }
        assert!(matches!(watcher.recv().await, Err(broadcast::error::RecvError::Lagged(3))));
        assert_eq!(watcher.recv().await.unwrap().received_at, 3);
    }
}
