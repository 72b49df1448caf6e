//! Tillsyn agent: inventories its host and reports to a collector over mutual-TLS gRPC.
//!
//! # Layout
//! - [`state`]: the agent's state directory (`--dir`): config, key, certificates.
//! - [`discovery`]: read-only network/OT discovery (`discover --target CIDR`).
//! - [`delta`]: numbering of reports and delta reports against the last one built.
//! - [`enroll`]: enrollment: local key, CSR, token -> client certificate; non-interactive and
//!   idempotent for images and configuration management.
//! - [`host_identity`]: the hashed machine id that binds a certificate to its host.
//! - [`renew`]: certificate renewal at two thirds of the lifetime, over mutual TLS.
//! - [`inventory`]: collectors of facts about the host, each fact with evidence.
//! - [`jobs`]: scheduled work pulled from the collector (long-poll), run with jitter.
//! - [`report`]: turns an [`inventory::Inventory`] into a `tillsyn.v1` report.
//! - [`client`]: the mTLS gRPC channel to the collector.
//! - [`spool`]: the on-disk queue of reports waiting for the collector's acknowledgement.
//! - [`run`]: the reporting loop (`run`, `run --once`): inventory -> spool -> drain.
//! - [`service`] (Windows only): the agent as a Windows service (`service install|uninstall|run`).
//! - `acl` (Windows): the state directory's ACL, SYSTEM and Administrators only.
//! - [`telemetry`]: tracing set-up shared by the binary and embedders.
//! - [`tls_facts`]: the recording TLS client (accepts and records any certificate) and the
//!   facts of a handshake, shared by the listener probe and discovery.

mod acl;
pub mod client;
pub mod delta;
pub mod discovery;
pub mod enroll;
pub mod host_identity;
pub mod inventory;
pub mod jobs;
pub mod renew;
pub mod report;
pub mod run;
#[cfg(windows)]
pub mod service;
pub mod spool;
pub mod state;
pub mod telemetry;
pub mod tls_facts;

/// The agent's software version, sent in every report and heartbeat.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
