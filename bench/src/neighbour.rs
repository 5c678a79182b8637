//! A neighbour that keeps cores busy: the busy machine of `run --neighbour N`.
//!
//! Each core is one `sh` spinning in an empty loop: all user CPU, no memory, no I/O, so what
//! it takes from a row is CPU time and nothing else. Stopped (killed and reaped) when dropped.

use std::process::{Child, Command, Stdio};

#[derive(Debug)]
pub struct Neighbour {
    spinners: Vec<Child>,
}

impl Neighbour {
    /// Starts `cores` spinners; none for 0.
    pub fn start(cores: usize) -> std::io::Result<Self> {
        let mut neighbour = Self { spinners: Vec::with_capacity(cores) };
        for _ in 0..cores {
            let spinner = Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?;
            // Pushed at once: an error on a later one drops (and stops) the earlier ones.
            neighbour.spinners.push(spinner);
        }
        Ok(neighbour)
    }
}

impl Drop for Neighbour {
    fn drop(&mut self) {
        for spinner in &mut self.spinners {
            let _ = spinner.kill();
            let _ = spinner.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_neighbour_spins_until_dropped() {
        let neighbour = Neighbour::start(1).unwrap();
        let pid = neighbour.spinners[0].id();
        let stat = std::path::PathBuf::from(format!("/proc/{pid}/stat"));
        assert!(stat.exists());
        drop(neighbour);
        assert!(!stat.exists(), "the spinner was reaped");
    }
}
