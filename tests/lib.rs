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
mod budget;
mod capture;
mod ci;
mod cli;
mod completions;
mod diff;
mod encryption;
mod examples;
mod fetch;
mod hostile;
mod init;
mod interrupt;
mod issue;
mod json;
mod load;
mod logging;
mod net_fault;
mod perturb;
mod project;
mod proxy_cli;
mod pseudonyms;
mod reader;
mod redaction;
mod replay;
mod shard;
mod signing;
mod slots;
mod tls;
mod writers;
