//! A job as a due-queue keeps it while it waits: boxed, without its endpoint's name, with the
//! share of the body budget its body takes.
//!
//! A queue's maps are sized for the largest backlog they ever held (a map does not shrink),
//! and a backlog of thousands forms whenever intake outruns delivery for a moment. Kept inline,
//! each slot of a map was a whole job, and each job had its own copy of the endpoint's name on
//! the heap: at S10's peak they were 32 of the router's 53 MB of heap. Boxed, a slot is a
//! pointer; the name is the queue's own, put back when the job is handed out.
//!
//! The charge: the deliveries of one fan-out share one body in memory, so each is charged its
//! share of the body's length, not the whole length (ten endpoints took the budget ten times
//! over, and their bodies were read back from the store past a tenth of the backlog the budget
//! allows).

use std::ops::Deref;

use crate::store::DeliveryJob;

/// A waiting job; its `endpoint` is empty until [`Kept::into_job`].
#[derive(Debug)]
pub(super) struct Kept(Box<Held>);

#[derive(Debug)]
struct Held {
    job: DeliveryJob,
    charge: usize,
}

impl Kept {
    /// `job`, whose body (if it kept one) takes `charge` bytes of the body budget.
    pub fn new(mut job: DeliveryJob, charge: usize) -> Self {
        job.endpoint = String::new();
        Self(Box::new(Held { job, charge }))
    }

    /// The bytes of the body budget it holds: given back when it leaves the queue.
    pub fn charge(&self) -> usize {
        self.0.charge
    }

    /// The job again, as the queue of `endpoint` hands it out.
    pub fn into_job(self, endpoint: &str) -> DeliveryJob {
        let mut job = self.0.job;
        job.endpoint = endpoint.to_owned();
        job
    }
}

impl Deref for Kept {
    type Target = DeliveryJob;

    fn deref(&self) -> &DeliveryJob {
        &self.0.job
    }
}
