//! lockstorm: make distributed locks fight, and see what happens.
//!
//! A scenario ([`scenario`]) describes a workload; the [`engine`] runs it with
//! one client per virtual node against a [`backend`]; the [`oracle`] checks
//! mutual exclusion and fencing exactly; [`metrics`] merges per-node records
//! into snapshots; [`report`] turns a finished run into files.

pub mod backend;
pub mod clock;
pub mod compare;
pub mod engine;
pub mod faults;
pub mod metrics;
pub mod oracle;
pub mod pace;
pub mod report;
pub mod run;
pub mod scenario;
pub mod thresholds;
pub mod tui;
