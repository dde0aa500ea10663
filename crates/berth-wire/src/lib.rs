//! The AWS wire shapes Berth speaks, generated from botocore's service
//! models (`tools/codegen/gen_wire.py`). Pure data: no I/O, no logic
//! beyond parsing an operation name and body into a typed action
//! ([`ecs::Action`], [`logs::Action`], [`ec2::Action`], [`sts::Action`],
//! [`cloudwatch::Action`], [`elbv2::Action`], [`acm::Action`]) and writing typed responses. [`codec`] holds
//! the Query/EC2 mechanics those modules call (form parameters in, XML
//! out); JSON and CBOR go through serde. [`berth`] is Berth's own
//! operator API, written by hand in the same style.
//!
//! Unknown JSON fields and Query parameters in requests are ignored on
//! purpose: newer SDKs add members before Berth knows them, and AWS
//! accepts such requests too.

pub mod acm;
pub mod berth;
pub mod ce;
pub mod cloudwatch;
pub mod codec;
pub mod ec2;
pub mod ecs;
pub mod elbv2;
#[allow(non_camel_case_types)] // botocore names some IAM enums in lower camel case
pub mod iam;
pub mod logs;
pub mod scheduler;
pub mod secretsmanager;
pub mod servicediscovery;
pub mod ssm;
pub mod sts;
