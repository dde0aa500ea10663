//! Berth's domain model: tasks, containers, nodes, services and their
//! deployments as typed objects (status enums, parsed ARNs, addresses as
//! `Ipv4Addr`), the task lifecycle, clusters, task definitions, tags and
//! the Fargate size rules. Pure data and rules: nothing here does I/O or
//! knows about HTTP. Only `berth-api` converts these to and from the ECS
//! wire shapes. Two kinds of record are kept in their wire shape on
//! purpose: task definitions (the user's document, which ECS returns as
//! registered) and clusters.

pub mod arn;
pub mod capacity;
pub mod cluster;
pub mod elb;
pub mod discovery;
pub mod error;
pub mod fargate;
pub mod iam;
pub mod lifecycle;
pub mod metering;
pub mod metric_math;
pub mod metrics;
pub mod network;
pub mod node;
pub mod records;
pub mod secrets;
pub mod service;
pub mod tags;
pub mod task;
pub mod task_definition;
#[doc(hidden)]
pub mod testing;
pub mod usage;

pub use arn::Account;
pub use error::ModelError;
