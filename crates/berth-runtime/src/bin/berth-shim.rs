//! The per-task shim; see `berth_runtime::shim`.

fn main() -> std::process::ExitCode {
    berth_runtime::shim::main()
}
