//! Test infrastructure shared by Berth's tests: a SigV4 signer for
//! requests (an independent implementation: AWS's own `aws-sigv4`), a
//! throwaway PostgreSQL server started from Debian's binaries, and a
//! handle on the real `berth` binary.

pub mod postgres;
pub mod registry;
pub mod server;
pub mod sign;
