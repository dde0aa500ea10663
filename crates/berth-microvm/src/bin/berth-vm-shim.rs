//! The per-task micro-VM supervisor; see `berth_microvm::shim`.

fn main() -> std::process::ExitCode {
    berth_microvm::shim::main()
}
