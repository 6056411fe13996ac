//! The `churnserve` binary as scripts start it: the `listening on` line, a graceful stop
//! on SIGTERM, and one clear error when ONNX Runtime is missing or wrong.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common;

fn churnserve(data_dir: &std::path::Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnserve"));
    command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
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
    let address = common::listening_address(&mut lines);
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
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

#[test]
fn settings_come_from_the_file_then_the_environment_then_flags() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("churnserve.toml");
    std::fs::write(
        &file,
        "max_batch_rows = 500\ndrift_window_minutes = 42\nlazy_aliases = true\nlog_format = \"json\"\nwrite_token = \"s3cret\"\nmetrics_listen = \"127.0.0.1:9999\"\n",
    )
    .expect("writes the file");
    let print = |env: &[(&str, &str)], flags: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_churnserve"))
            .args(["serve", "--config"])
            .arg(&file)
            .args(flags)
            .arg("--print-config")
            .envs(env.iter().copied())
            .env_remove("CHURNSERVE_MAX_BATCH_ROWS")
            .output()
            .expect("runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let from_file = print(&[], &[]);
    let renamed = print(&[], &["--metrics-listen", "127.0.0.1:9464"]);
    assert!(
        renamed
            .lines()
            .any(|l| l == "http_listen = \"127.0.0.1:9464\""),
        "--metrics-listen is a synonym of --http-listen:\n{renamed}"
    );
    for line in [
        "max_batch_rows = 500",
        "drift_window_minutes = 42",
        "lazy_aliases = true",
        "log_format = \"json\"",
        "write_token = \"<redacted>\"",
        "http_listen = \"127.0.0.1:9999\"",
    ] {
        assert!(
            from_file.lines().any(|l| l == line),
            "{line} in\n{from_file}"
        );
    }
    assert!(!from_file.contains("s3cret"), "tokens are never printed");
    let from_env = print(&[("CHURNSERVE_DRIFT_WINDOW_MINUTES", "7")], &[]);
    assert!(
        from_env.lines().any(|l| l == "drift_window_minutes = 7"),
        "{from_env}"
    );
    let from_flag = print(
        &[("CHURNSERVE_DRIFT_WINDOW_MINUTES", "7")],
        &["--drift-window-minutes", "9"],
    );
    assert!(
        from_flag.lines().any(|l| l == "drift_window_minutes = 9"),
        "{from_flag}"
    );

    std::fs::write(&file, "max_batch_row = 5\n").expect("writes the file");
    let output = Command::new(env!("CARGO_BIN_EXE_churnserve"))
        .args(["serve", "--print-config", "--config"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("`max_batch_row` is not a setting"),
        "{message}"
    );
}
