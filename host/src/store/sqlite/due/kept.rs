//! A job as a due-queue keeps it while it waits: boxed, and without its endpoint's name.
//!
//! A queue's maps are sized for the largest backlog they ever held (a map does not shrink),
//! and a backlog of thousands forms whenever intake outruns delivery for a moment. Kept inline,
//! each slot of a map was a whole job, and each job had its own copy of the endpoint's name on
//! the heap: at S10's peak they were 32 of the router's 53 MB of heap. Boxed, a slot is a
//! pointer; the name is the queue's own, put back when the job is handed out.

use std::ops::Deref;

use crate::store::DeliveryJob;

/// A waiting job; its `endpoint` is empty until [`Kept::into_job`].
#[derive(Debug)]
pub(super) struct Kept(Box<DeliveryJob>);

impl Kept {
    pub fn new(mut job: DeliveryJob) -> Self {
        job.endpoint = String::new();
        Self(Box::new(job))
    }

    /// The job again, as the queue of `endpoint` hands it out.
    pub fn into_job(self, endpoint: &str) -> DeliveryJob {
        let mut job = *self.0;
        job.endpoint = endpoint.to_owned();
        job
    }
}

impl Deref for Kept {
    type Target = DeliveryJob;

    fn deref(&self) -> &DeliveryJob {
        &self.0
    }
}
