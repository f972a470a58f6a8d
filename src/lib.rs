//! bugpack's library: the bundle format, capture sources, redaction, replay.
//!
//! The library never sees clap types, never prints and never exits; the
//! binary (`src/main.rs` and its `cli`, `settings` and `commands` modules)
//! turns flags into settings, calls in here, and renders what comes back.

pub mod bundle;
pub mod capture;
pub mod ci;
pub mod diff;
pub mod error;
pub mod fetch;
pub mod issue;
pub mod markdown;
pub mod matrix;
pub mod netfault;
pub mod partial;
pub mod proxy;
pub mod redact;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod schema;
pub mod shard;
pub mod sign;
pub mod starter;
pub mod yaml;
