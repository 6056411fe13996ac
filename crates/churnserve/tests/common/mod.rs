//! The `churnserve` binary as a child process, for the tests that kill, starve or soak it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Starts churnserve on `data_dir` with `extra` flags and returns it with its address,
/// read from its log.
pub fn start(data_dir: &Path, extra: &[&str]) -> (Child, String) {
    spawn(
        Command::new(env!("CARGO_BIN_EXE_churnserve")),
        data_dir,
        extra,
    )
}

/// Starts churnserve as the last argument of `command` (a launcher such as `prlimit`, or
/// churnserve itself).
pub fn spawn(mut command: Command, data_dir: &Path, extra: &[&str]) -> (Child, String) {
    let mut child = command
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "off",
        ])
        .args(extra)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn,churnserve=info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start churnserve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let line = lines
        .by_ref()
        .map(|line| line.expect("log line"))
        .find(|line| line.contains("listening on "))
        .expect("a `listening on` line");
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("address")
        .to_owned();
    // Keep draining the log so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, format!("http://{address}"))
}
