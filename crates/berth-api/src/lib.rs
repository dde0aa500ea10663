//! Berth's HTTP API: the AWS JSON 1.1 protocol (`POST /` with
//! `X-Amz-Target`), SigV4 verification, AWS error shapes, and the ECS and
//! CloudWatch Logs handlers on top of the store.
//!
//! Only this crate knows the AWS wire protocol. The edge ([`edge`]) reads
//! the HTTP request once, authenticates it and parses it into a typed
//! [`berth_wire::ecs::Action`] or [`berth_wire::logs::Action`]; handlers
//! take typed requests and return typed responses and never touch HTTP.
//! Berth's own operator API ([`berth_wire::berth`], e.g. the node's image
//! cache) is served the same way, beside two upload routes for images.
//!
//! [`logs::expire`] is the retention sweep a server runs every
//! [`logs::EXPIRY_INTERVAL`]; [`run_services`] is the service controller
//! over the store.

mod acm;
mod authz;
mod berth;
mod ce;
mod cost;
pub mod caller;
mod cloudwatch;
pub mod dns;
mod ec2;
mod ecs;
mod elbv2;
mod edge;
mod error;
mod iam;
pub mod logs;
pub mod meter;
mod metrics;
mod paging;
mod protocol;
mod scheduler;
mod secretsmanager;
mod servicediscovery;
mod services;
pub mod sigv4;
pub mod spot;
mod ssm;
mod sts;

pub use berth::network::ensure_defaults as ensure_network_defaults;
pub use edge::{Api, ApiConfig, router};
pub use error::ApiError;
pub use cloudwatch::run_metric_retention;
pub use dns::run_dns;
pub use meter::run_meter;
pub use services::run_services;
