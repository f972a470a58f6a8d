//! The bundle format `bugpack/v1`.

/// Why a bundle was rejected (exit 3).
#[derive(Debug, thiserror::Error)]
pub enum Rejection {}
