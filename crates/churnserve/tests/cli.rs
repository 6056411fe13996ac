//! The `churnserve` binary as scripts start it: the `listening on` line, a graceful stop
//! on SIGTERM, and one clear error when ONNX Runtime is missing or wrong.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn churnserve(data_dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnserve"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

#[test]
fn logs_listening_on_its_address_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().expect("temporary directory");
    let data_dir = data.path().join("fresh/registry");
    let mut child = churnserve(&data_dir, &[])
        .spawn()
        .expect("start churnserve");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut lines = stderr.lines();
    let listening = lines
        .by_ref()
        .map(|line| line.expect("log line"))
        .find(|line| line.contains("listening on "))
        .expect("a `listening on` line before the log ends");
    let address = listening
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address");
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{listening}"
    );
    assert!(data_dir.is_dir(), "the data directory is created");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("churnserve exits");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        lines
            .map_while(Result::ok)
            .any(|line| line.contains("server stopped"))
    );
}

#[test]
fn a_missing_or_wrong_onnx_runtime_is_one_clear_error() {
    let data = tempfile::tempdir().expect("temporary directory");
    let cases = [
        (
            "/nonexistent/libonnxruntime.so.1.31.1",
            "cannot load onnx runtime from /nonexistent/libonnxruntime.so.1.31.1",
        ),
        (
            "/lib/x86_64-linux-gnu/libm.so.6",
            "does not export `OrtGetApiBase`",
        ),
    ];
    for (library, fragment) in cases {
        let output = churnserve(data.path(), &["--onnxruntime", library])
            .output()
            .expect("run churnserve");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{library}: {stderr}");
        assert!(stderr.contains(fragment), "{library}: {stderr}");
        assert!(
            stderr.contains("scripts/setup-onnxruntime.sh"),
            "says how to fix it: {stderr}"
        );
    }
}

#[test]
fn an_invalid_configuration_is_refused_at_start() {
    let data = tempfile::tempdir().expect("temporary directory");
    let output = churnserve(data.path(), &["--max-batch-rows", "0"])
        .output()
        .expect("run churnserve");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("invalid configuration: max_batch_rows must be at least 1"),
        "{stderr}"
    );
}
