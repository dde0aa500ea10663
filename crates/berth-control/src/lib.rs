//! Berth's controllers. The scheduler is a pure function of a snapshot
//! ([`scheduler::place`]); [`placement::apply`] carries its plan out
//! through an applier that re-checks capacity in the same transaction
//! that commits it, so a stale snapshot can never over-commit a node.
//! Nothing here does I/O: the store is behind [`placement::PlacementTarget`].

pub mod placement;
pub mod scheduler;
