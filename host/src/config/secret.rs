//! Secret values and where they are read from.
//!
//! Owns [`Secret`], whose bytes never appear in `Debug` output, logs or errors, and the
//! [`Environment`] seam through which validation reads environment variables and files, so
//! that validation itself stays a pure function of its inputs.

use std::fmt;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A secret's bytes. Cloning shares them; `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<[u8]>);

impl Secret {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        Self(bytes.into())
    }

    /// The secret's bytes; call only where they are used (signing, verifying, connecting).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(<redacted>)")
    }
}

/// What validation may read from the outside world.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn is_file(&self, path: &Path) -> bool;
}

/// The real process environment and file system.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }
}

/// Secret files usually end with the newline an editor or `echo` added; it is not part of
/// the secret. Exactly one trailing `\n` or `\r\n` is removed.
pub fn trim_one_newline(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new(b"hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), b"hunter2");
    }

    #[test]
    fn trims_one_newline() {
        assert_eq!(trim_one_newline(b"abc\n".to_vec()), b"abc");
        assert_eq!(trim_one_newline(b"abc\r\n".to_vec()), b"abc");
        assert_eq!(trim_one_newline(b"abc\n\n".to_vec()), b"abc\n");
        assert_eq!(trim_one_newline(b"abc".to_vec()), b"abc");
    }
}
