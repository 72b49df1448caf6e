//! End-to-end tests: a real `tillsyn-collector` process and real `tillsyn-agent` processes on
//! 127.0.0.1 with real certificates. One test binary, a module per area.

#![allow(clippy::unwrap_used, missing_docs)]

mod compliance;
mod deploy;
mod discovery;
mod faults;
mod harness;
mod identity;
mod input;
mod reporting;
mod scans;
mod web;
