//! The bounded pool of dedicated threads that run plugin calls (DESIGN §7.5).
//!
//! Owns the threads and their queue. Wasm never runs on a Tokio worker: a long call would
//! stall every connection that worker serves. Each thread keeps its own warm instances, so
//! no instance is ever shared. A full queue refuses at once; that refusal is the
//! backpressure the ingresses turn into 503 with `Retry-After`.

use std::thread::JoinHandle;

use super::instance::WarmInstances;

/// A unit of work for a plugin thread.
pub type Job = Box<dyn FnOnce(&mut WarmInstances) + Send>;

/// Why a job was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Full,
    Stopped,
}

#[derive(Debug)]
pub struct CallPool {
    queue: Option<crossbeam_channel::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl CallPool {
    pub fn start(threads: usize, capacity: usize) -> std::io::Result<Self> {
        let (queue, jobs) = crossbeam_channel::bounded::<Job>(capacity);
        let mut handles = Vec::with_capacity(threads);
        for index in 0..threads.max(1) {
            let jobs = jobs.clone();
            let handle =
                std::thread::Builder::new().name(format!("plugin-{index}")).spawn(move || {
                    let mut warm = WarmInstances::default();
                    for job in jobs {
                        job(&mut warm);
                    }
                })?;
            handles.push(handle);
        }
        Ok(Self { queue: Some(queue), threads: handles })
    }

    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        let Some(queue) = &self.queue else { return Err(Refused::Stopped) };
        queue.try_send(job).map_err(|error| match error {
            crossbeam_channel::TrySendError::Full(_) => Refused::Full,
            crossbeam_channel::TrySendError::Disconnected(_) => Refused::Stopped,
        })
    }
}

impl Drop for CallPool {
    /// Lets queued calls finish (each is bounded by its deadline), then joins the threads.
    fn drop(&mut self) {
        self.queue.take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
