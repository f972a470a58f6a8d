//! bugpack's integration tests: each runs the real binary on real files,
//! processes and sockets, through the harness in `support`.

mod support;

mod cli;
mod reader;
