//! End-to-end tests: a real `tillsyn-collector` process and real `tillsyn-agent` processes on
//! 127.0.0.1 with real certificates. One test binary, a module per area.

#![allow(clippy::unwrap_used, missing_docs)]

mod audit;
mod collector_self;
mod compliance;
mod deploy;
mod discovery;
mod faults;
mod fleet;
mod harness;
mod identity;
mod input;
mod loadgen;
mod oidc;
mod passkey;
mod policy;
mod postgres;
mod reporting;
mod scans;
mod text;
mod verification;
mod web;
mod windows;
