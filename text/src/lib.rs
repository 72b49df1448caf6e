//! The one place that decides what untrusted text may be stored and how each output escapes it.
//!
//! Everything an agent or a network device says is attacker-controlled: a compromised host picks
//! its own host name, any device on an OT network picks its SNMP `sysName`. This crate is pure
//! (no I/O, no allocation beyond the returned strings) so a fuzz target links only it.
//!
//! # Layout
//! - [`store`]: the ingest gate. [`store::sanitise`] escapes control characters visibly
//!   before storage and says how long the original was; [`hostname::check`] refuses anything
//!   that is not an RFC 1123 host name or an IP address.
//! - [`output`]: escaping for where text goes: a terminal table cell, a CSV cell (OWASP
//!   formula neutralisation), HTML.
//!
//! What is escaped where:
//!
//! | where | escaped |
//! |---|---|
//! | storage ([`store::sanitise`]) | C0 controls except tab, DEL, C1 controls, bidi overrides and isolates (U+202A–U+202E, U+2066–U+2069) |
//! | terminal ([`output::terminal`]) | all of the above, plus tab, newline and the other invisible format characters (zero-width, line/paragraph separators, BOM, ...) |
//! | CSV ([`output::csv_cell`]) | as the terminal, plus a leading `'` on cells that begin with `=`, `+`, `-`, `@`, tab or CR |
//! | HTML ([`output::html`]) | as the terminal, plus `&`, `<`, `>`, `"`, `'` as entities |

pub mod hostname;
pub mod output;
pub mod store;

pub use hostname::HostnameError;
pub use store::{Sanitised, sanitise};
