//! What the collector takes in from agents, parsed and checked before anything is stored:
//! reports (protobuf, validated field by field through the text gate) and certificate material
//! (enrollment CSRs, client certificates). Pure: no I/O, no store, nothing async.
//!
//! A crate of its own so that the fuzz targets for these parsers of untrusted bytes link only
//! them, not the collector's server, store and web stack.
//!
//! # Layout
//! - [`report`]: `ReportRequest` -> [`report::ReportInput`], and the input types the store
//!   takes; the collector re-exports it as `tillsyn_collector::ingest`.
//! - [`certificate`]: CSR verification and a certificate's common name, used by the CA.

pub mod certificate;
pub mod report;
