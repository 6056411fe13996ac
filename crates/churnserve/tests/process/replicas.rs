//! Replicas of one service: churnserve processes sharing one PostgreSQL cluster and one
//! S3-compatible server, both started for each test by the project's own scripts
//! (`scripts/postgres.sh`, `scripts/s3.sh`), so that a test can stop and restart them.
//! Changes made through any replica are served by every replica; scoring never fails
//! while aliases move; version numbers stay gap-free across replicas; a replica killed in
//! the middle of a registration, a database restart and a stopped object store leave the
//! registry consistent and the other replicas serving; what either replica answers is in
//! one prediction log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use tonic::Code;

use crate::common;
use common::replicas::{
    Backing, Replica, free_port, http_get, model_bytes, runtime, score_request, serving, set_alias,
    until_served,
};
use common::{register, start_fails};

/// One backing pair at a time: each test runs a database server, an object store and up
/// to three replicas, which is all two cores can take without timing out.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long a replica may take to serve a change made through another one.
const PROPAGATION: Duration = Duration::from_secs(1);

/// This test's turn, and PostgreSQL and S3 servers of its own (stopped before the turn
/// passes: the tuple's second field drops first).
pub(crate) fn exclusive_backing() -> (std::sync::MutexGuard<'static, ()>, Backing) {
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    (turn, Backing::start())
}

/// Scoring loops spread over replicas, counting calls and failures until finished.
struct Scorers {
    stop: Arc<AtomicBool>,
    scored: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    loops: Vec<tokio::task::JoinHandle<()>>,
}

impl Scorers {
    fn start(replicas: &[&Replica], loops: usize) -> Scorers {
        let stop = Arc::new(AtomicBool::new(false));
        let (scored, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let loops = (0..loops)
            .map(|i| {
                let address = replicas[i % replicas.len()].address.clone();
                let (scored, failed, stop) =
                    (Arc::clone(&scored), Arc::clone(&failed), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut client = ScoringServiceClient::connect(address)
                        .await
                        .expect("connect");
                    while !stop.load(Ordering::Relaxed) {
                        match client.score(score_request()).await {
                            Ok(_) => scored.fetch_add(1, Ordering::Relaxed),
                            Err(status) => {
                                eprintln!("score failed: {status:?}");
                                // A call that fails at once must not keep this worker from
                                // the test's other tasks: the failure is counted, not spun on.
                                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        Scorers {
            stop,
            scored,
            failed,
            loops,
        }
    }

    /// Stops the loops and asserts that none of their calls failed.
    async fn finish_without_failures(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        for scoring in self.loops {
            scoring.await.expect("scoring loop");
        }
        let scored = self.scored.load(Ordering::Relaxed);
        assert_eq!(
            self.failed.load(Ordering::Relaxed),
            0,
            "failed Score calls of {scored}"
        );
        assert!(scored > 100, "the loops scored: {scored}");
        scored
    }
}

#[test]
fn a_change_through_any_replica_is_served_by_every_replica_within_a_second() {
    let (_turn, backing) = exclusive_backing();
    let first = backing.replica("a");
    let (second, third) = (backing.replica("b"), backing.replica("c"));
    runtime().block_on(async {
        let before = serving(&first).await.expect("seeded");
        let registered = first
            .register("telco-logreg.onnx")
            .await
            .expect("registered through the first replica");
        assert!(registered.version > before);
        // The second replica never saw the registration: it finds the version in the
        // shared registry and its artifact in the shared store.
        set_alias(&second, registered.version)
            .await
            .expect("moved through the second replica");
        let took = until_served(&[&first, &second, &third], registered.version, PROPAGATION).await;
        eprintln!("every replica served the move after {took:?}");

        // A threshold set through the third replica decides on the first.
        let threshold = 0.01;
        third
            .registry()
            .await
            .set_threshold(pb::SetThresholdRequest {
                name: "telco-churn".to_owned(),
                version: registered.version,
                threshold,
            })
            .await
            .expect("threshold");
        let started = Instant::now();
        loop {
            let prediction = first
                .scoring()
                .await
                .score(score_request())
                .await
                .expect("score")
                .into_inner()
                .prediction
                .expect("prediction");
            if prediction.will_churn == (prediction.churn_probability >= threshold) {
                break;
            }
            assert!(
                started.elapsed() < PROPAGATION,
                "the threshold did not follow"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    backing.assert_undamaged();
}

#[test]
fn a_replica_that_cannot_load_the_new_target_keeps_the_old_one_and_says_so() {
    let (_turn, backing) = exclusive_backing();
    let first = backing.replica("a");
    let port = free_port();
    let http = format!("127.0.0.1:{port}");
    let second = backing.replica_with("b", &["--http-listen", &http]);
    runtime().block_on(async {
        let before = serving(&second).await.expect("seeded");
        // Another field appended to the ModelProto: the same model, a new SHA-256.
        let mut bytes = model_bytes("telco-logreg.onnx");
        bytes.extend([0x32, 4]);
        bytes.extend(b"copy");
        let new = register(&mut first.registry().await, "telco-churn", &bytes)
            .await
            .expect("registered");
        // The first replica holds the new version in memory; the second can only fetch
        // its object, which now fails its hash.
        let object = backing.object_file(&format!("models/{}.onnx", new.sha256));
        std::fs::write(&object, b"not the registered bytes").expect("corrupt the object");
        set_alias(&first, new.version).await.expect("moved");
        until_served(&[&first], new.version, PROPAGATION).await;

        let mut health = tonic_health::pb::health_client::HealthClient::new(
            tonic::transport::Endpoint::from_shared(second.address.clone())
                .expect("address")
                .connect()
                .await
                .expect("connect"),
        );
        // /readyz reads the catalog; the health service follows it after each refresh.
        let not_serving = tonic_health::pb::health_check_response::ServingStatus::NotServing;
        let started = Instant::now();
        loop {
            let (status, body) = http_get(port, "/readyz");
            let check = health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .expect("health")
                .into_inner();
            if status.contains("503") && check.status == not_serving as i32 {
                assert!(
                    body.contains(&format!("still served by version {before}"))
                        && body.contains(&format!("version {} cannot load", new.version)),
                    "{body}"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{status} {body} {check:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (_, metrics) = http_get(port, "/metrics");
        assert!(metrics.contains("churn_aliases_behind 1"), "{metrics}");
        assert_eq!(
            serving(&second).await.expect("serves the old target"),
            before
        );

        std::fs::write(&object, &bytes).expect("restore the object");
        until_served(&[&second], new.version, Duration::from_secs(5)).await;
        let started = Instant::now();
        loop {
            let (status, _) = http_get(port, "/readyz");
            let check = health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .expect("health")
                .into_inner();
            let serving = tonic_health::pb::health_check_response::ServingStatus::Serving;
            if status.contains("200") && check.status == serving as i32 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{status} {check:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

#[test]
fn scoring_never_fails_while_aliases_move_through_every_replica() {
    let (_turn, backing) = exclusive_backing();
    let replicas = [
        backing.replica("a"),
        backing.replica("b"),
        backing.replica("c"),
    ];
    let all: Vec<&Replica> = replicas.iter().collect();
    runtime().block_on(async {
        let before = serving(&replicas[0]).await.expect("seeded");
        let other = replicas[0]
            .register("telco-lgbm.onnx")
            .await
            .expect("registered")
            .version;
        let scorers = Scorers::start(&all, 8);
        for moved in 0..20 {
            let target = if moved % 2 == 0 { other } else { before };
            set_alias(&replicas[moved % 3], target).await.expect("move");
            until_served(&all, target, PROPAGATION).await;
        }
        let scored = scorers.finish_without_failures().await;
        eprintln!("{scored} Score calls across 20 alias moves");
    });
}

#[test]
fn simultaneous_registrations_through_three_replicas_are_numbered_in_turn() {
    let (_turn, backing) = exclusive_backing();
    let replicas = [
        backing.replica("a"),
        backing.replica("b"),
        backing.replica("c"),
    ];
    runtime().block_on(async {
        let bytes = model_bytes("telco-logreg.onnx");
        let mut clients = Vec::new();
        for replica in &replicas {
            clients.push(replica.registry().await);
        }
        let registrations = clients.into_iter().map(|mut client| {
            let bytes = bytes.clone();
            tokio::spawn(async move { register(&mut client, "race", &bytes).await })
        });
        let mut numbers = Vec::new();
        for registration in registrations.collect::<Vec<_>>() {
            numbers.push(
                registration
                    .await
                    .expect("task")
                    .expect("registered")
                    .version,
            );
        }
        numbers.sort_unstable();
        assert_eq!(numbers, [1, 2, 3]);
    });
    backing.assert_undamaged();
}

#[test]
fn a_replica_killed_in_the_middle_of_a_registration_leaves_the_registry_consistent() {
    let (_turn, backing) = exclusive_backing();
    let (first, mut doomed) = (backing.replica("a"), backing.replica("b"));
    runtime().block_on(async {
        let bytes = model_bytes("telco-lgbm.onnx");
        let (sender, receiver) = tokio::sync::mpsc::channel(64);
        let mut client = doomed.registry().await;
        let call = tokio::spawn(async move {
            client
                .register_model(tokio_stream::wrappers::ReceiverStream::new(receiver))
                .await
        });
        let metadata = pb::RegisterModelMetadata {
            name: "telco-churn".to_owned(),
            ..Default::default()
        };
        use pb::register_model_request::Part;
        sender
            .send(pb::RegisterModelRequest {
                part: Some(Part::Metadata(metadata)),
            })
            .await
            .expect("send");
        for chunk in bytes[..bytes.len() / 2].chunks(16 * 1024) {
            sender
                .send(pb::RegisterModelRequest {
                    part: Some(Part::OnnxChunk(chunk.to_vec())),
                })
                .await
                .expect("send");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        doomed.kill();
        assert!(call.await.expect("task").is_err());
        let before = serving(&first).await.expect("the other replica serves");
        // Nothing of the killed registration is visible; the next number is the next one.
        let next = register(&mut first.registry().await, "telco-churn", &bytes)
            .await
            .expect("registered after the kill");
        assert_eq!(next.version, before.max(2) + 1);
    });
    backing.assert_undamaged();
}

#[test]
fn a_database_restart_fails_no_score_and_writes_succeed_once_it_is_back() {
    let (_turn, backing) = exclusive_backing();
    let (first, second) = (backing.replica("a"), backing.replica("b"));
    runtime().block_on(async {
        let before = serving(&first).await.expect("seeded");
        let other = first
            .register("telco-lgbm.onnx")
            .await
            .expect("registered")
            .version;
        let scorers = Scorers::start(&[&first, &second], 4);

        backing.postgres("stop");
        let refused = set_alias(&first, other)
            .await
            .expect_err("the database is down");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert!(
            refused.message().contains("unavailable"),
            "{}",
            refused.message()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        backing.postgres("start");

        let started = Instant::now();
        loop {
            match set_alias(&second, other).await {
                Ok(_) => break,
                Err(status) if status.code() == Code::Unavailable => {
                    assert!(started.elapsed() < Duration::from_secs(30), "{status:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => panic!("{status:?}"),
            }
        }
        until_served(&[&first, &second], other, Duration::from_secs(10)).await;
        set_alias(&first, before).await.expect("moves back");
        until_served(&[&first, &second], before, PROPAGATION).await;
        scorers.finish_without_failures().await;
    });
    backing.assert_undamaged();
}

#[test]
fn a_stopped_object_store_fails_registrations_cleanly_while_scoring_continues() {
    let (_turn, backing) = exclusive_backing();
    let replica = backing.replica("a");
    runtime().block_on(async {
        let before = serving(&replica).await.expect("seeded");
        backing.s3("stop");
        let refused = replica
            .register("telco-logreg.onnx")
            .await
            .expect_err("the object store is down");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        assert!(
            refused.message().contains("artifact store"),
            "{}",
            refused.message()
        );
        assert_eq!(serving(&replica).await.expect("still serves"), before);
        backing.s3("start");
        let registered = replica
            .register("telco-logreg.onnx")
            .await
            .expect("registers once the store is back");
        assert_eq!(registered.version, before.max(2) + 1, "no number consumed");
    });
    backing.assert_undamaged();
}

#[test]
fn a_bad_registry_url_or_artifact_store_stops_the_start_with_one_line() {
    let (_turn, backing) = exclusive_backing();
    let wrong_password = {
        let mut url = url::Url::parse(&backing.registry_url).expect("url");
        url.set_password(Some("wrong")).expect("password");
        url.to_string()
    };
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            "--registry-url",
            "mysql://localhost/churn",
            &["not a registry URL"],
        ),
        (
            "--registry-url",
            &wrong_password,
            &["password authentication failed", "--registry-url"],
        ),
        (
            "--registry-url",
            "postgres://churn@127.0.0.1:1/postgres",
            &["cannot connect to the registry database", "--registry-url"],
        ),
        (
            "--artifact-store",
            "s3://no-such-bucket/registry",
            &["no-such-bucket", "artifact store"],
        ),
    ];
    for (flag, value, fragments) in cases {
        let mut flags = vec![flag, value];
        if flag == "--artifact-store" {
            flags.extend(["--registry-url", &backing.registry_url]);
        }
        let data_dir = backing.dir.path().join("refused");
        let stderr = start_fails(backing.command(), &data_dir, &flags);
        let last = stderr.trim().lines().last().unwrap_or_default();
        for fragment in fragments {
            assert!(last.contains(fragment), "{flag} {value}: {stderr}");
        }
        assert!(
            !last.contains("wrong"),
            "the password is not printed: {last}"
        );
    }
}

#[test]
fn predictions_served_by_two_replicas_are_in_one_cohort() {
    let (_turn, backing) = exclusive_backing();
    let replicas = [backing.replica("a"), backing.replica("b")];
    runtime().block_on(async {
        for (replica, prefix) in replicas.iter().zip(["A", "B"]) {
            let mut scoring = replica.scoring().await;
            for k in 0..5 {
                let mut request = score_request();
                if let Some(customer) = request.customer.as_mut() {
                    customer.customer_id = format!("{prefix}-{k}");
                }
                scoring.score(request).await.expect("scored");
            }
        }
        let mut monitoring = MonitoringServiceClient::connect(replicas[0].address.clone())
            .await
            .expect("connect");
        let started = Instant::now();
        loop {
            let cohorts = monitoring
                .realized_performance(pb::RealizedPerformanceRequest {
                    model: score_request().model,
                    cohort: pb::CohortPeriod::Day.into(),
                    ..Default::default()
                })
                .await
                .expect("realized performance")
                .into_inner()
                .cohorts;
            let scored: u64 = cohorts.iter().map(|c| c.scored).sum();
            if scored == 10 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{scored} of the 10 customers both replicas scored are in the log"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    backing.assert_undamaged();
}
