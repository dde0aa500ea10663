//! Berth's domain model: clusters, task definitions, ARNs, tags and the
//! Fargate size rules. Pure data and rules: nothing here does I/O or knows
//! about HTTP. The records are the ECS wire shapes from `berth-wire`, so
//! what is stored is exactly what `Describe*` returns.

pub mod arn;
pub mod cluster;
pub mod error;
pub mod fargate;
pub mod lifecycle;
pub mod network;
pub mod records;
pub mod tags;
pub mod task;
pub mod task_definition;

pub use arn::Account;
pub use error::ModelError;
