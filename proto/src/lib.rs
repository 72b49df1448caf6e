//! The `tillsyn.v1` wire contract: generated prost messages, and with the `grpc` feature the
//! tonic services.
//!
//! # Layout
//! - `tillsyn/v1/enrollment.proto`: `Enrollment.Enroll` (one-time token + CSR -> client certificate).
//! - `tillsyn/v1/inventory.proto`: `Inventory.Report` and `Inventory.Heartbeat`.
//! - `tillsyn/v1/jobs.proto`: `Jobs.Pull` (long-poll) and `Jobs.Complete`.
//!
//! Generated code is not edited; `build.rs` regenerates it from the `.proto` files on every build.
#![allow(missing_docs, clippy::pedantic, clippy::unwrap_used)]

/// Version 1 of the contract. Fields are only ever added; numbers are never reused.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/tillsyn.v1.rs"));
}
