//! Tillsyn collector: enrolls agents, receives their reports over mutual TLS, stores them, and
//! (in later steps) links assets to systems and evaluates classification rules.
//!
//! # Layout
//! - [`config`]: the state directory and `collector.toml` (raw -> validated).
//! - [`ca`]: the certificate authority (rcgen): CA, server certificate, agent certificates.
//! - [`catalog`]: the system register (types, CSV/YAML parsing, validation), the
//!   `tillsyn-catalog` crate re-exported.
//! - [`tokens`]: single-use enrollment tokens (only hashes are stored).
//! - [`store`]: the [`store::Store`] trait and its SQLite back-end.
//! - [`ingest`]: validation of incoming reports before anything is stored (the
//!   `tillsyn-intake` crate's `report`, re-exported).
//! - [`server`]: the tonic gRPC server, identity from client certificates.
//! - [`admin`]: operator actions behind the CLI verbs.
//! - [`audit`]: reading and verifying the hash-chained audit log.
//! - [`builtin`]: the built-in `tillsyn` system that claims the collector's own host.
//! - [`quickstart`]: the one-command demo on this machine.
//! - [`rotation`]: CA rotation and server certificate renewal (`ca`, `cert` verbs).
//! - [`output`]: tables, JSON and CSV for listings, HTML escaping: every output goes through it.
//! - [`i18n`]: the message catalogues (Swedish, English) of everything shown to people.
//! - [`incremental`]: verdicts kept per asset and system, re-judged by change and by due date.
//! - [`evaluator`]: the serving collector's evaluation round: [`incremental`] kept current from
//!   the store's change detectors, findings written for what was judged again.
//! - [`access`]: the access list of a system's hosts for the owner's access review.
//! - [`rules`]: the rule table (pure); [`linking`]: assets to systems; [`evaluation`]: one
//!   whole evaluation (load, link, judge, store); [`parallel`]: its CPU-bound parts on every
//!   core.
//! - [`compliance`]: the CLI's compliance verbs; [`report`]: the yearly management review;
//!   [`scans`]: scheduled scans and their jobs; [`background`]: the serving collector's
//!   recurring work.
//! - [`web`]: the owners' web interface (HTTPS, sign-in with TOTP, scoped pages, workflows).

pub mod access;
pub mod admin;
pub mod audit;
pub mod background;
pub mod builtin;
pub mod ca;
pub use tillsyn_catalog as catalog;
pub mod compliance;
pub mod config;
pub mod evaluation;
pub mod evaluator;
pub mod i18n;
pub mod incremental;
pub use tillsyn_intake::report as ingest;
pub mod linking;
pub mod output;
pub mod parallel;
pub mod quickstart;
pub mod report;
pub mod rotation;
pub mod rules;
pub mod scans;
pub mod server;
pub mod store;
pub mod tokens;
pub mod web;
