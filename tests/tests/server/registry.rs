//! churn.v1.RegistryService through the real server: registration and its refusals,
//! aliases moved under load, restarts, concurrency, tokens, and a second server on the
//! same database.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use tests::{
    BUNDLED, BUNDLED_MODEL, FixtureCustomer, TestServer, files_below, fixture, register,
    repo_bytes, upload_dataset,
};
use tonic::Code;

fn metadata(name: &str) -> pb::RegisterModelMetadata {
    pb::RegisterModelMetadata {
        name: name.to_owned(),
        ..pb::RegisterModelMetadata::default()
    }
}

fn customer() -> pb::Customer {
    fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto()
}

/// The bundled LightGBM version (2) as the registry publishes it: `dense-unnamed.onnx`
/// is the same trees without the metadata, so its feature names and categories are these.
async fn published_lgbm(server: &TestServer) -> pb::ModelVersion {
    server
        .registry()
        .await
        .get_model_version(pb::GetModelVersionRequest {
            model: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version: 2,
                alias: String::new(),
            }),
        })
        .await
        .expect("bundled lgbm")
        .into_inner()
}

/// The feature names `dense-unnamed.onnx` must be registered with.
async fn telco_features(server: &TestServer) -> Vec<String> {
    published_lgbm(server)
        .await
        .features
        .into_iter()
        .map(|f| f.name)
        .collect()
}

/// `rows` for `dense-unnamed.onnx`, which takes each category as its index in the
/// category list.
async fn coded(server: &TestServer, rows: &[FixtureCustomer]) -> Vec<pb::Customer> {
    let published = published_lgbm(server).await;
    rows.iter()
        .map(|row| {
            let mut customer = row.to_proto();
            for feature in &published.features {
                let value = customer
                    .features
                    .get_mut(&feature.name)
                    .expect("fixture feature");
                if let Some(pb::feature_value::Kind::Text(text)) = &value.kind {
                    let code = feature
                        .allowed_values
                        .iter()
                        .position(|v| v == text)
                        .expect("known category");
                    value.kind = Some(pb::feature_value::Kind::Number(code as f64));
                }
            }
            customer
        })
        .collect()
}

fn score_request(alias: &str) -> pb::ScoreRequest {
    pb::ScoreRequest {
        model: Some(pb::ModelRef {
            name: BUNDLED_MODEL.to_owned(),
            version: 0,
            alias: alias.to_owned(),
        }),
        customer: Some(customer()),
        top_reasons: 0,
    }
}

#[tokio::test]
async fn first_start_seeds_the_bundled_models() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let models = registry
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("models")
        .into_inner()
        .models;
    assert_eq!(models.len(), 1);
    assert_eq!(
        (models[0].name.as_str(), models[0].latest_version),
        (BUNDLED_MODEL, 2)
    );
    assert_eq!(models[0].aliases.get("production"), Some(&1));
    assert_eq!(models[0].aliases.get("challenger"), Some(&2));
    let versions = registry
        .list_model_versions(pb::ListModelVersionsRequest {
            name: BUNDLED_MODEL.to_owned(),
            include_archived: false,
        })
        .await
        .expect("versions")
        .into_inner()
        .versions;
    for (version, bundled) in versions.iter().zip(BUNDLED) {
        assert_eq!(version.version, bundled.version);
        assert_eq!(
            version.sha256,
            tests::file_sha256(&format!("models/{}.onnx", bundled.file))
        );
        assert_eq!(version.aliases, [bundled.alias]);
        assert_eq!(version.features.len(), 19);
        let contract = version
            .features
            .iter()
            .find(|f| f.name == "contract")
            .expect("contract");
        assert_eq!(contract.kind(), pb::FeatureKind::Text);
        assert_eq!(
            contract.allowed_values,
            ["Month-to-month", "One year", "Two year"]
        );
        assert_eq!(
            (version.threshold, version.risk_band_cuts.as_slice()),
            (0.5, &[0.3, 0.6][..])
        );
        assert!(version.created_at.is_some());
    }
    assert_eq!(versions[0].producer, "skl2onnx");
    assert_eq!(versions[1].producer, "OnnxMLTools");

    let unseeded = TestServer::start_with(|config| config.no_seed = true).await;
    let models = unseeded
        .registry()
        .await
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("models")
        .into_inner();
    assert!(models.models.is_empty());
}

#[tokio::test]
async fn registration_validates_before_anything_is_visible() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    registry
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("the server is up and seeded");
    let before = files_below(server.data_dir());
    let logreg = repo_bytes("models/telco-logreg.onnx");
    let cases: Vec<(&str, pb::RegisterModelMetadata, Vec<u8>, Code, &str)> = vec![
        (
            "truncated",
            metadata("broken"),
            logreg[..logreg.len() / 2].to_vec(),
            Code::InvalidArgument,
            "cannot be served",
        ),
        (
            "not onnx",
            metadata("broken"),
            b"this is not a model".to_vec(),
            Code::InvalidArgument,
            "not an ONNX model",
        ),
        (
            "no probability",
            metadata("broken"),
            repo_bytes("tests/models/no-probability.onnx"),
            Code::InvalidArgument,
            "no probability output",
        ),
        (
            "dense without names",
            metadata("broken"),
            repo_bytes("tests/models/dense-unnamed.onnx"),
            Code::InvalidArgument,
            "give its feature names",
        ),
        (
            "wrong number of names",
            pb::RegisterModelMetadata {
                feature_names: vec!["a".to_owned()],
                ..metadata("broken")
            },
            repo_bytes("tests/models/dense-unnamed.onnx"),
            Code::InvalidArgument,
            "has 19 columns but 1 feature names were given",
        ),
        (
            "bad name",
            metadata("no spaces please"),
            logreg.clone(),
            Code::InvalidArgument,
            "model name \"no spaces please\" is not valid",
        ),
        (
            "no name",
            metadata(""),
            logreg.clone(),
            Code::InvalidArgument,
            "metadata: name is required",
        ),
        (
            "bad threshold",
            pb::RegisterModelMetadata {
                threshold: 1.5,
                ..metadata("broken")
            },
            logreg.clone(),
            Code::InvalidArgument,
            "threshold 1.5 must be within (0, 1)",
        ),
        (
            "unknown reference dataset",
            pb::RegisterModelMetadata {
                reference_dataset: "nope".to_owned(),
                ..metadata("broken")
            },
            logreg.clone(),
            Code::NotFound,
            "dataset \"nope\" not found",
        ),
        (
            "no bytes",
            metadata("broken"),
            Vec::new(),
            Code::InvalidArgument,
            "no content after its metadata",
        ),
    ];
    for (case, metadata, bytes, code, fragment) in cases {
        let status = register(&mut registry, metadata, &bytes)
            .await
            .expect_err(case);
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert!(
            status.message().contains(fragment),
            "{case}: {}",
            status.message()
        );
    }
    let status = registry
        .register_model(tokio_stream::iter(vec![pb::RegisterModelRequest {
            part: Some(pb::register_model_request::Part::OnnxChunk(logreg.clone())),
        }]))
        .await
        .expect_err("bytes before metadata");
    assert_eq!(status.code(), Code::InvalidArgument);

    assert_eq!(
        files_below(server.data_dir())
            .iter()
            .filter(|f| f.starts_with("artifacts"))
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|f| f.starts_with("artifacts"))
            .collect::<Vec<_>>(),
        "no file left behind"
    );
    let status = registry
        .list_model_versions(pb::ListModelVersionsRequest {
            name: "broken".to_owned(),
            include_archived: true,
        })
        .await
        .expect_err("no model");
    assert_eq!(status.code(), Code::NotFound);

    let named = pb::RegisterModelMetadata {
        feature_names: telco_features(&server).await,
        aliases: vec!["candidate".to_owned()],
        ..metadata("broken")
    };
    let version = register(
        &mut registry,
        named,
        &repo_bytes("tests/models/dense-unnamed.onnx"),
    )
    .await
    .expect("with names");
    assert_eq!(
        (version.version, version.aliases.as_slice()),
        (1, &["candidate".to_owned()][..]),
        "no number was consumed"
    );
    let mut scoring = server.scoring().await;
    let response = scoring
        .score(pb::ScoreRequest {
            model: Some(pb::ModelRef {
                name: "broken".to_owned(),
                version: 0,
                alias: "candidate".to_owned(),
            }),
            customer: coded(
                &server,
                &fixture("models/fixtures/telco-lgbm.json", "customers")[..1],
            )
            .await
            .pop(),
            top_reasons: 0,
        })
        .await
        .expect("scored by the new alias")
        .into_inner();
    assert_eq!(response.served_by.expect("served_by").version, 1);
}

#[tokio::test]
async fn aliases_move_under_load_without_a_failed_request() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let stop = Arc::new(AtomicBool::new(false));
    let (scored, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let seen = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (mut client, stop, scored, failed, seen) = (
            server.scoring().await,
            Arc::clone(&stop),
            Arc::clone(&scored),
            Arc::clone(&failed),
            Arc::clone(&seen),
        );
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match client.score(score_request("production")).await {
                    Ok(response) => {
                        scored.fetch_add(1, Ordering::Relaxed);
                        seen.lock()
                            .expect("lock")
                            .insert(response.into_inner().served_by.expect("served_by").version);
                    }
                    Err(status) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        eprintln!("failed during alias moves: {status:?}");
                    }
                }
            }
        }));
    }
    for round in 0..10 {
        let version = if round % 2 == 0 { 2 } else { 1 };
        let moved = registry
            .set_alias(pb::SetAliasRequest {
                gate: None,
                name: BUNDLED_MODEL.to_owned(),
                alias: "production".to_owned(),
                version,
            })
            .await
            .expect("set alias")
            .into_inner();
        assert!(moved.aliases.contains(&"production".to_owned()));
        let answer = server
            .scoring()
            .await
            .score(score_request("production"))
            .await
            .expect("score")
            .into_inner();
        assert_eq!(
            answer.served_by.expect("served_by").version,
            version,
            "serving follows at once"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        worker.await.expect("worker");
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert!(
        scored.load(Ordering::Relaxed) > 20,
        "the workers kept scoring"
    );
    assert_eq!(
        *seen.lock().expect("lock"),
        [1, 2].into(),
        "both versions answered"
    );
}

#[tokio::test]
async fn alias_and_archive_rules_answer_with_their_codes() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let set = |alias: &str, version: u32| pb::SetAliasRequest {
        gate: None,
        name: BUNDLED_MODEL.to_owned(),
        alias: alias.to_owned(),
        version,
    };
    assert_eq!(
        registry
            .set_alias(set("production", 9))
            .await
            .expect_err("no version")
            .code(),
        Code::NotFound
    );
    let status = registry
        .archive_model_version(pb::ArchiveModelVersionRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 1,
        })
        .await
        .expect_err("aliased");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status
            .message()
            .contains("still the target of alias(es) production"),
        "{}",
        status.message()
    );
    registry
        .delete_alias(pb::DeleteAliasRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "challenger".to_owned(),
        })
        .await
        .expect("delete");
    let status = server
        .scoring()
        .await
        .score(score_request("challenger"))
        .await
        .expect_err("alias gone");
    assert_eq!(status.code(), Code::NotFound);
    let archived = registry
        .archive_model_version(pb::ArchiveModelVersionRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 2,
        })
        .await
        .expect("archive")
        .into_inner();
    assert!(archived.archived);
    assert_eq!(
        registry
            .set_alias(set("challenger", 2))
            .await
            .expect_err("archived")
            .code(),
        Code::FailedPrecondition
    );
    let listed = registry
        .list_model_versions(pb::ListModelVersionsRequest {
            name: BUNDLED_MODEL.to_owned(),
            include_archived: false,
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.versions.len(), 1);
    let evaluations = registry
        .list_evaluations(pb::ListEvaluationsRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 1,
        })
        .await
        .expect("evaluations")
        .into_inner();
    assert!(evaluations.evaluations.is_empty());
}

#[tokio::test]
async fn a_restart_finds_everything_as_it_was() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("registry");
    let before = {
        let server = TestServer::start_on(&dir, |_| {}).await;
        let mut registry = server.registry().await;
        let named = pb::RegisterModelMetadata {
            feature_names: telco_features(&server).await,
            description: "the same trees, named at registration".to_owned(),
            tags: [("owner".to_owned(), "ml".to_owned())].into(),
            ..metadata("restarted")
        };
        register(
            &mut registry,
            named,
            &repo_bytes("tests/models/dense-unnamed.onnx"),
        )
        .await
        .expect("register");
        registry
            .set_alias(pb::SetAliasRequest {
                gate: None,
                name: "restarted".to_owned(),
                alias: "production".to_owned(),
                version: 1,
            })
            .await
            .expect("alias");
        upload_dataset(
            &mut registry,
            "holdout",
            &repo_bytes("models/data/test.csv"),
        )
        .await
        .expect("dataset");
        let models = registry
            .list_models(pb::ListModelsRequest {})
            .await
            .expect("models")
            .into_inner();
        server.stop().await.expect("clean stop");
        models
    };
    let server = TestServer::start_on(&dir, |_| {}).await;
    let mut registry = server.registry().await;
    assert_eq!(
        registry
            .list_models(pb::ListModelsRequest {})
            .await
            .expect("models")
            .into_inner(),
        before
    );
    let datasets = registry
        .list_datasets(pb::ListDatasetsRequest {})
        .await
        .expect("datasets")
        .into_inner()
        .datasets;
    assert_eq!(
        datasets.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(),
        ["holdout", "telco-holdout"]
    );
    let response = server
        .scoring()
        .await
        .score(pb::ScoreRequest {
            model: Some(pb::ModelRef {
                name: "restarted".to_owned(),
                version: 0,
                alias: String::new(),
            }),
            customer: coded(
                &server,
                &fixture("models/fixtures/telco-lgbm.json", "customers")[..1],
            )
            .await
            .pop(),
            top_reasons: 0,
        })
        .await
        .expect("score after restart")
        .into_inner();
    assert_eq!(response.served_by.expect("served_by").name, "restarted");
}

#[tokio::test]
async fn datasets_upload_once_with_their_counts() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let dataset = upload_dataset(
        &mut registry,
        "holdout",
        &repo_bytes("models/data/test.csv"),
    )
    .await
    .expect("upload");
    assert_eq!((dataset.rows, dataset.columns.len()), (2113, 21));
    let csv = String::from_utf8(repo_bytes("models/data/test.csv")).expect("utf-8");
    let churned = csv
        .lines()
        .skip(1)
        .filter(|line| line.ends_with(",Yes"))
        .count() as u64;
    assert_eq!(dataset.positives, churned);
    assert_eq!(dataset.sha256, tests::file_sha256("models/data/test.csv"));
    let status = upload_dataset(
        &mut registry,
        "holdout",
        &repo_bytes("models/data/test.csv"),
    )
    .await
    .expect_err("duplicate");
    assert_eq!(status.code(), Code::AlreadyExists);
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_gap_free_versions() {
    let server = TestServer::start().await;
    let bytes = Arc::new(repo_bytes("models/telco-logreg.onnx"));
    let mut tasks = Vec::new();
    for i in 0..6 {
        let (mut registry, bytes) = (server.registry().await, Arc::clone(&bytes));
        tasks.push(tokio::spawn(async move {
            let metadata = pb::RegisterModelMetadata {
                description: format!("client {i}"),
                ..metadata("concurrent")
            };
            register(&mut registry, metadata, &bytes)
                .await
                .expect("register")
                .version
        }));
    }
    let mut versions = Vec::new();
    for task in tasks {
        versions.push(task.await.expect("task"));
    }
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4, 5, 6]);
}

fn with<T>(token: Option<&str>, message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header"),
        );
    }
    request
}

#[tokio::test]
async fn tokens_guard_writes_and_reads() {
    let server = TestServer::start_with(|config| {
        config.write_token = Some("write-secret".into());
        config.read_token = Some("read-secret".into());
    })
    .await;
    let mut registry = server.registry().await;
    let alias = pb::SetAliasRequest {
        gate: None,
        name: BUNDLED_MODEL.to_owned(),
        alias: "production".to_owned(),
        version: 2,
    };
    let cases = [
        (None, Code::Unauthenticated),
        (Some("read-secret"), Code::PermissionDenied),
        (Some("wrong"), Code::PermissionDenied),
    ];
    for (token, code) in cases {
        assert_eq!(
            registry
                .set_alias(with(token, alias.clone()))
                .await
                .expect_err("refused")
                .code(),
            code,
            "{token:?}"
        );
    }
    let status = registry
        .list_models(with(None, pb::ListModelsRequest {}))
        .await
        .expect_err("read without a token");
    assert_eq!(status.code(), Code::Unauthenticated);
    registry
        .set_alias(with(Some("write-secret"), alias))
        .await
        .expect("write token writes");
    registry
        .list_models(with(Some("read-secret"), pb::ListModelsRequest {}))
        .await
        .expect("read token reads");
    let mut scoring = server.scoring().await;
    assert_eq!(
        scoring
            .score(with(None, score_request("production")))
            .await
            .expect_err("no token")
            .code(),
        Code::Unauthenticated
    );
    scoring
        .score(with(Some("write-secret"), score_request("production")))
        .await
        .expect("the write token also reads");
}

#[tokio::test]
async fn a_second_server_on_the_same_database_follows_changes() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("registry");
    let first = TestServer::start_on(&dir, |config| config.registry_poll_ms = 50).await;
    first
        .registry()
        .await
        .list_models(pb::ListModelsRequest {})
        .await
        .expect("seeded");
    let second = TestServer::start_on(&dir, |config| config.registry_poll_ms = 50).await;
    let mut scoring = second.scoring().await;
    let version = |response: pb::ScoreResponse| response.served_by.expect("served_by").version;
    assert_eq!(
        version(
            scoring
                .score(score_request("production"))
                .await
                .expect("score")
                .into_inner()
        ),
        1
    );
    first
        .registry()
        .await
        .set_alias(pb::SetAliasRequest {
            gate: None,
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: 2,
        })
        .await
        .expect("move on the first server");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if version(
            scoring
                .score(score_request("production"))
                .await
                .expect("score")
                .into_inner(),
        ) == 2
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second server did not follow the alias within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_corrupted_artifact_refuses_to_serve_and_the_rest_keeps_serving() {
    let data = tempfile::tempdir().expect("tempdir");
    let dir = data.path().join("registry");
    TestServer::start_on(&dir, |_| {})
        .await
        .stop()
        .await
        .expect("seed and stop");
    let lgbm = dir.join(format!(
        "artifacts/models/{}.onnx",
        tests::file_sha256("models/telco-lgbm.onnx")
    ));
    let mut bytes = std::fs::read(&lgbm).expect("artifact");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&lgbm, bytes).expect("corrupt");

    let server = TestServer::start_on(&dir, |_| {}).await;
    let mut scoring = server.scoring().await;
    let status = scoring
        .score(score_request("challenger"))
        .await
        .expect_err("corrupt version");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert!(
        status.message().contains("has changed on disk"),
        "{}",
        status.message()
    );
    scoring
        .score(score_request("production"))
        .await
        .expect("the other version serves");
    let status = server
        .registry()
        .await
        .set_alias(pb::SetAliasRequest {
            gate: None,
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: 2,
        })
        .await
        .expect_err("cannot promote a version that cannot serve");
    assert_eq!(status.code(), Code::FailedPrecondition);
    let still = scoring
        .score(score_request("production"))
        .await
        .expect("production untouched")
        .into_inner();
    assert_eq!(still.served_by.expect("served_by").version, 1);
}

#[tokio::test]
async fn registered_versions_score_like_python() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let named = pb::RegisterModelMetadata {
        feature_names: telco_features(&server).await,
        ..metadata("renamed-lgbm")
    };
    let version = register(
        &mut registry,
        named,
        &repo_bytes("tests/models/dense-unnamed.onnx"),
    )
    .await
    .expect("register");
    let rows: Vec<FixtureCustomer> = fixture("models/fixtures/telco-lgbm.json", "customers");
    let response = server
        .scoring()
        .await
        .score_batch(pb::ScoreBatchRequest {
            model: Some(pb::ModelRef {
                name: "renamed-lgbm".to_owned(),
                version: version.version,
                alias: String::new(),
            }),
            customers: coded(&server, &rows).await,
            top_reasons: 0,
            ..Default::default()
        })
        .await
        .expect("batch")
        .into_inner();
    for (result, row) in response.results.iter().zip(&rows) {
        let Some(pb::row_result::Outcome::Prediction(prediction)) = &result.outcome else {
            panic!("{result:?}")
        };
        assert!(
            (prediction.churn_probability - row.churn_probability).abs() <= tests::PYTHON_TOLERANCE,
            "{}",
            row.id
        );
    }
}

#[tokio::test]
async fn a_one_version_cache_with_lazy_aliases_still_serves_every_version() {
    let server = TestServer::start_with(|config| {
        config.model_cache_size = 1;
        config.lazy_aliases = true;
    })
    .await;
    let mut scoring = server.scoring().await;
    for version in [1, 2, 1, 2, 2, 1] {
        let request = pb::ScoreRequest {
            model: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version,
                alias: String::new(),
            }),
            customer: Some(customer()),
            top_reasons: 0,
        };
        let served = scoring
            .score(request)
            .await
            .expect("score")
            .into_inner()
            .served_by
            .expect("served_by");
        assert_eq!(served.version, version, "evicted versions load again");
    }
    for bundled in BUNDLED {
        let served = scoring
            .score(score_request(bundled.alias))
            .await
            .expect("score")
            .into_inner()
            .served_by;
        assert_eq!(served.expect("served_by").version, bundled.version);
    }
}
