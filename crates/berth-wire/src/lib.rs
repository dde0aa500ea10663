//! The AWS wire shapes Berth speaks, generated from botocore's service
//! models (`tools/codegen/gen_wire.py`). Pure data: no I/O, no logic
//! beyond parsing an operation name and body into a typed [`ecs::Action`]
//! or [`logs::Action`]. [`berth`] is Berth's own operator API, written by
//! hand in the same style.
//!
//! Unknown JSON fields in requests are ignored on purpose: newer SDKs add
//! members before Berth knows them, and AWS accepts such requests too.

pub mod berth;
pub mod ecs;
pub mod logs;
