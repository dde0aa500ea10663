//! Berth's controllers. The scheduler is a pure function of a snapshot
//! ([`scheduler::place`]); [`placement::apply`] carries its plan out
//! through an applier that re-checks capacity in the same transaction
//! that commits it, so a stale snapshot can never over-commit a node.
//!
//! Controllers share one [`runner`]: a queue de-duplicated per key, one
//! reconcile per key at a time, woken by triggers and requeues, errors
//! backed off. Nothing here does I/O: the store is behind
//! [`placement::PlacementTarget`], and reconcilers bring their own (the
//! service controller's is [`service::ServiceTarget`]).

pub mod placement;
pub mod runner;
pub mod scheduler;
pub mod service;
