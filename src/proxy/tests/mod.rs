//! The proxy against real sockets on loopback: an origin, a raw client and
//! (where installed) curl. Each test fails if the behaviour it names breaks.

mod caching;
mod faults;
mod http_faults;
mod lifecycle;
mod malformed;
mod mode;
mod pass;
mod support;
