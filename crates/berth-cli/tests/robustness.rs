//! The `berth` client against hostile output conditions and input: a
//! closed pipe, a 100,000-character argument, names with control
//! characters. Never a panic; escaped text, clear errors.

use std::path::Path;
use std::process::{Command, Stdio};

use berth_testinfra::server::BerthProcess;

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_berth"))
}

fn berth(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).arg("--data-dir").arg(data).env("RUST_BACKTRACE", "0").output().unwrap()
}

#[test]
fn closed_pipes_long_arguments_and_control_characters() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let _b = BerthProcess::start(bin(), &data, &["--no-agent"], &[]).unwrap();

    let evil = "evil\u{1b}[2J\u{1b}]0;owned\u{7}\nname";
    let out = berth(&data, &["subnet", "create", "10.90.0.0/24", "--name", evil]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Names from the server are printed escaped, never raw.
    let out = berth(&data, &["subnet", "ls"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("evil\\u{1b}[2J\\u{1b}]0;owned\\u{7}\\nname"), "{stdout}");
    assert!(!stdout.contains('\u{1b}') && !stdout.contains('\u{7}'), "{stdout:?}");

    // `berth subnet ls | head -0`: the reader is gone before anything is written.
    let mut child = Command::new(bin())
        .args(["subnet", "ls", "--data-dir"])
        .arg(&data)
        .env("RUST_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "a closed pipe ends the program quietly: {:?} {stderr}", out.status);

    // A 100,000-character name: a clear error, not a panic (and nothing made).
    let long = "n".repeat(100_000);
    let out = berth(&data, &["subnet", "create", "10.91.0.0/24", "--name", &long]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(!stderr.contains("panicked"), "{}", &stderr[..stderr.len().min(300)]);
    assert!(stderr.contains("is 100000 bytes long; the longest Berth takes is 4096"), "{}", &stderr[..stderr.len().min(300)]);
    assert!(stderr.len() < 1000, "the error does not repeat the argument");
    let out = berth(&data, &["subnet", "ls"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("10.91.0.0/24"));
}
