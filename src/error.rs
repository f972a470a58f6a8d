//! How a failure maps to DESIGN.md's exit codes.
//!
//! Code everywhere returns `anyhow::Error` with context; the typed causes that
//! decide the exit code ([`UsageError`], [`crate::bundle::Rejection`]) sit
//! somewhere in its chain. [`ErrorKind::of`] finds them,
//! once, in `main`. Nothing here prints.

use std::fmt;
use std::io;

/// A failure's class, which decides the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad flags, a missing input file, consent refused: exit 2.
    Usage,
    /// A bundle that breaks a reader rule or its signature: exit 3.
    Rejected,
    /// Anything else (I/O, sandbox, every run errored): exit 4.
    Failure,
    /// The output went to a closed pipe (`bugpack inspect x | head`): exit 0, silently.
    BrokenPipe,
}

impl ErrorKind {
    /// Classifies an error by the first typed cause in its chain.
    pub fn of(err: &anyhow::Error) -> Self {
        for cause in err.chain() {
            if cause.is::<UsageError>() {
                return Self::Usage;
            }
            if cause.is::<crate::bundle::Rejection>() {
                return Self::Rejected;
            }
            if io_kind(cause) == Some(io::ErrorKind::BrokenPipe) {
                return Self::BrokenPipe;
            }
        }
        Self::Failure
    }

    /// The exit code DESIGN.md gives this class.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::BrokenPipe => 0,
            Self::Usage => 2,
            Self::Rejected => 3,
            Self::Failure => 4,
        }
    }
}

/// The kind of an I/O error, also when a serialiser wrapped it (`serde_json`
/// writing into a closed pipe reports a `serde_json::Error`).
fn io_kind(cause: &(dyn std::error::Error + 'static)) -> Option<io::ErrorKind> {
    if let Some(io) = cause.downcast_ref::<io::Error>() {
        return Some(io.kind());
    }
    cause
        .downcast_ref::<serde_json::Error>()
        .and_then(serde_json::Error::io_error_kind)
}

/// The user asked for something that cannot work as asked: exit 2.
///
/// The message says what is wrong and what to do instead.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Builds an `anyhow::Error` of kind [`ErrorKind::Usage`].
pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(msg.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn kind_is_found_under_context() {
        let err = Err::<(), _>(usage("bad flag"))
            .context("while resolving capture")
            .unwrap_err();
        assert_eq!(ErrorKind::of(&err), ErrorKind::Usage);
        assert_eq!(ErrorKind::of(&err).exit_code(), 2);
    }

    #[test]
    fn plain_errors_are_failures() {
        let err = anyhow::anyhow!("disk on fire");
        assert_eq!(ErrorKind::of(&err).exit_code(), 4);
    }

    #[test]
    fn broken_pipe_is_silent_success() {
        let err = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(ErrorKind::of(&err), ErrorKind::BrokenPipe);
        assert_eq!(ErrorKind::of(&err).exit_code(), 0);
    }

    #[test]
    fn broken_pipe_inside_serde_json_is_silent_success() {
        let json = serde_json::Error::io(io::Error::from(io::ErrorKind::BrokenPipe));
        let err = anyhow::Error::new(json).context("printing the manifest");
        assert_eq!(ErrorKind::of(&err), ErrorKind::BrokenPipe);
    }
}
