//! churnctl reaching any server: TLS against a test CA and mutual TLS with a client
//! certificate (flags and `CHURNSERVE_*` variables), model references that name the same
//! version in every subcommand, the audit log, shell completions and clap's suggestions.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tests::{TestServer, pki};

fn churnctl(args: &[&str], env: &[(&str, &Path)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_churnctl"));
    command.args(args).env_remove("CHURNSERVE_ADDR");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("churnctl runs"))
        .await
        .expect("churnctl task")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_lines(output: &Output) -> Vec<Value> {
    assert!(output.status.success(), "{}", stderr(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_ca_and_client_certificates() {
    let pki = pki();
    let dir = tempfile::tempdir().expect("temporary directory");
    let files = pki.write_to(dir.path());
    let ca = files.ca.to_str().expect("path");

    // TLS alone: the test CA is enough, and a client certificate is not needed.
    let tls_only = TestServer::start_with(|config| {
        config.tls_cert = Some(files.server_cert.clone());
        config.tls_key = Some(files.server_key.clone());
    })
    .await;
    let https = format!("https://localhost:{}", tls_only.address.port());
    let scored = output(churnctl(
        &[
            "--server",
            &https,
            "--ca-cert",
            ca,
            "--output",
            "json",
            "show",
            "models:/telco-churn/1",
        ],
        &[],
    ))
    .await;
    assert_eq!(json_lines(&scored)[0]["version"], 1);
    let unverified = output(churnctl(&["--server", &https, "models"], &[])).await;
    assert!(
        !unverified.status.success(),
        "the platform's roots do not know the test CA"
    );
    tls_only.stop().await.expect("stops");

    let server = TestServer::start_with(|config| {
        config.tls_cert = Some(files.server_cert.clone());
        config.tls_key = Some(files.server_key.clone());
        config.tls_client_ca = Some(files.ca.clone());
    })
    .await;
    let https = format!("https://localhost:{}", server.address.port());
    let (ca, client_cert, client_key) = (
        files.ca.to_str().expect("path"),
        files.client_cert.to_str().expect("path"),
        files.client_key.to_str().expect("path"),
    );

    let mutual = output(churnctl(
        &[
            "--server",
            &https,
            "--ca-cert",
            ca,
            "--client-cert",
            client_cert,
            "--client-key",
            client_key,
            "--output",
            "json",
            "models",
        ],
        &[],
    ))
    .await;
    let models = json_lines(&mutual);
    assert!(
        models.iter().any(|m| m["name"] == "telco-churn"),
        "{models:?}"
    );

    // The same from the environment, with HOST:PORT: a CA implies TLS.
    let from_env = output(churnctl(
        &[
            "--server",
            &format!("localhost:{}", server.address.port()),
            "--output",
            "json",
            "models",
        ],
        &[
            ("CHURNSERVE_CA_CERT", Path::new(ca)),
            ("CHURNSERVE_CLIENT_CERT", Path::new(client_cert)),
            ("CHURNSERVE_CLIENT_KEY", Path::new(client_key)),
        ],
    ))
    .await;
    assert_eq!(json_lines(&from_env), models);

    let anonymous = output(churnctl(
        &["--server", &https, "--ca-cert", ca, "models"],
        &[],
    ))
    .await;
    assert!(
        !anonymous.status.success(),
        "a client without a certificate is refused"
    );
    assert!(
        stderr(&anonymous).starts_with("churnctl: "),
        "{}",
        stderr(&anonymous)
    );

    // The platform's roots do not know the test CA.
    let untrusted = output(churnctl(
        &[
            "--server",
            &https,
            "--client-cert",
            client_cert,
            "--client-key",
            client_key,
            "models",
        ],
        &[],
    ))
    .await;
    assert!(!untrusted.status.success());
    let message = stderr(&untrusted);
    assert!(
        message.contains("cannot connect") && message.to_lowercase().contains("certificate"),
        "{message}"
    );

    let plaintext = output(churnctl(
        &["--server", &format!("http://{}", server.address), "models"],
        &[],
    ))
    .await;
    assert!(!plaintext.status.success(), "plaintext to a TLS port fails");
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_references_name_the_same_version_in_every_subcommand_and_changes_are_audited() {
    let server = TestServer::start().await;
    let address = format!("http://{}", server.address);
    let run = |args: &[&str]| {
        let mut all = vec!["--server", address.as_str(), "--output", "json"];
        all.extend_from_slice(args);
        output(churnctl(&all, &[]))
    };
    let version_of = |lines: Vec<Value>| lines[0]["version"].as_u64().expect("version");
    for (reference, expected) in [
        ("models:/telco-churn/2", 2),
        ("telco-churn/1", 1),
        ("models:/telco-churn@challenger", 2),
        ("telco-churn@production", 1),
        ("telco-churn", 1),
    ] {
        assert_eq!(
            version_of(json_lines(&run(&["show", reference]).await)),
            expected,
            "{reference}"
        );
    }
    assert_eq!(
        version_of(json_lines(
            &run(&["show", "telco-churn", "--version", "2"]).await
        )),
        2
    );
    let both = run(&["show", "models:/telco-churn/2", "--version", "1"]).await;
    assert!(!both.status.success());
    assert!(
        stderr(&both).contains("already names a version"),
        "{}",
        stderr(&both)
    );
    let malformed = run(&["show", "models:/telco-churn/two"]).await;
    assert!(!malformed.status.success());
    assert!(
        stderr(&malformed).contains("models:/NAME/VERSION"),
        "{}",
        stderr(&malformed)
    );

    let moved = json_lines(&run(&["alias", "set", "models:/telco-churn/2", "staging"]).await);
    assert_eq!(moved[0]["version"], 2);
    assert_eq!(
        version_of(json_lines(
            &run(&["show", "models:/telco-churn@staging"]).await
        )),
        2
    );
    let threshold = json_lines(&run(&["set-threshold", "models:/telco-churn/2", "0.4"]).await);
    assert_eq!(threshold[0]["threshold"], 0.4, "{threshold:?}");
    let legacy = json_lines(&run(&["set-threshold", "telco-churn", "2", "0.45"]).await);
    assert_eq!(legacy[0]["threshold"], 0.45);
    let versions = json_lines(&run(&["versions", "models:/telco-churn"]).await);
    assert_eq!(versions.len(), 2);
    let whole_model_only = run(&["versions", "models:/telco-churn/1"]).await;
    assert!(!whole_model_only.status.success());

    let audit = json_lines(&run(&["audit", "telco-churn", "--limit", "3"]).await);
    assert_eq!(audit.len(), 3, "{audit:?}");
    assert_eq!(
        audit[0]["action"], "set_threshold",
        "newest first: {audit:?}"
    );
    assert_eq!(audit[2]["action"], "set_alias", "{audit:?}");
    assert_eq!(audit[2]["detail"]["alias"], "staging", "{audit:?}");
    assert!(
        audit[0]["actor"]
            .as_str()
            .expect("actor")
            .starts_with("churnctl:")
    );
    let at = audit[0]["at"].as_str().expect("at");
    let rfc3339 = at.len() == 20
        && at.ends_with('Z')
        && at.as_bytes()[10] == b'T'
        && at[..4].parse::<u32>().is_ok_and(|year| year >= 2024);
    assert!(rfc3339, "{at} is not RFC 3339 UTC");
    let ids: Vec<u64> = audit
        .iter()
        .map(|e| e["id"].as_u64().expect("id"))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let older = json_lines(&run(&["audit", "telco-churn", "--before", &ids[2].to_string()]).await);
    assert!(older.iter().all(|e| e["id"].as_u64().expect("id") < ids[2]));
    assert!(
        older.iter().any(|e| e["action"] == "set_alias"),
        "the seed's aliases: {older:?}"
    );
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_generate_and_typos_get_a_suggestion() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef churnctl")] {
        let script = output(churnctl(&["completions", shell], &[])).await;
        assert!(script.status.success(), "{}", stderr(&script));
        let text = String::from_utf8_lossy(&script.stdout);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        for subcommand in ["score-file", "set-threshold", "audit", "completions"] {
            assert!(
                text.contains(subcommand),
                "{shell} completion lacks {subcommand}"
            );
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().expect("temporary directory");
            let file = dir.path().join("churnctl.bash");
            std::fs::write(&file, text.as_bytes()).expect("writes");
            let parsed = output({
                let mut bash = Command::new("bash");
                bash.arg("-n").arg(&file);
                bash
            })
            .await;
            assert!(parsed.status.success(), "bash -n: {}", stderr(&parsed));
        }
    }
    let typo = output(churnctl(&["modles"], &[])).await;
    assert!(!typo.status.success());
    assert!(stderr(&typo).contains("models"), "{}", stderr(&typo));
}
