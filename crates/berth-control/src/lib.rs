//! Berth's controllers. The scheduler is a pure function of a snapshot
//! ([`scheduler::place`]); whoever applies its plan re-checks capacity in
//! the same transaction that commits it, so a stale snapshot can never
//! over-commit a node.

pub mod scheduler;
