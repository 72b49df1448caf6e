//! Fleet simulator for the Tillsyn collector: enrolls N simulated agents with their own keys and
//! certificates over real mutual-TLS gRPC, sends full reports shaped like a recorded host's
//! inventory, deltas with a chosen churn, heartbeats and a reconnect storm, and measures what
//! the collector accepted, how fast, and what it cost the collector (CPU seconds and peak RSS
//! from `/proc`).
//!
//! It reuses the agent's own code: the channel set-up ([`tillsyn_agent::client`]), the
//! inventory-to-report mapping ([`tillsyn_agent::report`]) and the `tillsyn.v1` messages; only
//! the key, certificate and delta state of each simulated agent live here, in memory.
//!
//! # Layout
//! - [`fixture`]: the recorded inventory every simulated host reports, made distinct per agent.
//! - [`fleet`]: one simulated agent: enrollment, mTLS channel, full and delta reports, heartbeats.
//! - [`procfs`]: CPU seconds and peak RSS of a process, read from `/proc/PID`.
//! - [`collector`]: a `tillsyn-collector serve` process the simulator starts and restarts.
//! - [`figures`]: latencies, outcomes by gRPC status, per-phase figures, written as JSON.
//! - [`run`]: the phases (enroll, full, delta, steady state, storm) and their measurement.

pub mod collector;
pub mod figures;
pub mod fixture;
pub mod fleet;
pub mod procfs;
pub mod run;
