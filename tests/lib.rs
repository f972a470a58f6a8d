//! bugpack's integration tests: each runs the real binary on real files,
//! processes and sockets, through the harness in `support`.

#![allow(
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines
)]

mod support;

mod axes;
mod capture;
mod cli;
mod hostile;
mod reader;
mod redaction;
mod replay;
mod signing;
