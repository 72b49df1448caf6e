//! Tillsyn collector: enrolls agents, receives their reports over mutual TLS, stores them, and
//! (in later steps) links assets to systems and evaluates classification rules.
//!
//! # Layout
//! - [`config`]: the state directory and `collector.toml` (raw -> validated).
//! - [`ca`]: the certificate authority (rcgen): CA, server certificate, agent certificates.
//! - [`tokens`]: single-use enrollment tokens (only hashes are stored).
//! - [`store`]: the [`store::Store`] trait and its SQLite back-end.
//! - [`ingest`]: validation of incoming reports before anything is stored.
//! - [`server`]: the tonic gRPC server, identity from client certificates.
//! - [`admin`]: operator actions behind the CLI verbs.
//! - [`quickstart`]: the one-command demo on this machine.
//! - [`output`]: tables and JSON for listings.
//! - [`web`]: the owners' web interface (HTTPS, sign-in with TOTP, scoped pages, workflows).

pub mod admin;
pub mod background;
pub mod ca;
pub mod catalog;
pub mod compliance;
pub mod config;
pub mod evaluation;
pub mod ingest;
pub mod linking;
pub mod output;
pub mod quickstart;
pub mod report;
pub mod rules;
pub mod scans;
pub mod server;
pub mod store;
pub mod tokens;
pub mod web;
