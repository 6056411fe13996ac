//! churn.v1.ScoringService through the real server on an ephemeral port: scores equal to
//! Python onnxruntime's for every bundled model, and every error path with its code.

use churn_api::v1 as pb;
use tests::{
    BUNDLED, BUNDLED_MODEL, Bundled, FixtureCustomer, LGBM, PYTHON_TOLERANCE, TestServer,
    file_sha256, fixture,
};
use tokio_stream::StreamExt;
use tonic::Code;

fn customers(model: &str) -> Vec<FixtureCustomer> {
    fixture(&format!("models/fixtures/{model}.json"), "customers")
}

fn model_ref(name: &str, version: u32, alias: &str) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: name.to_owned(),
        version,
        alias: alias.to_owned(),
    })
}

fn expected_band(probability: f64) -> pb::RiskBand {
    match probability {
        p if p >= 0.6 => pb::RiskBand::High,
        p if p >= 0.3 => pb::RiskBand::Medium,
        _ => pb::RiskBand::Low,
    }
}

fn assert_prediction(prediction: &pb::Prediction, expected: &FixtureCustomer) {
    assert_eq!(prediction.customer_id, expected.id);
    let delta = (prediction.churn_probability - expected.churn_probability).abs();
    assert!(
        delta <= PYTHON_TOLERANCE,
        "{}: {} vs python {}",
        expected.id,
        prediction.churn_probability,
        expected.churn_probability
    );
    assert_eq!(
        prediction.will_churn,
        prediction.churn_probability >= 0.5,
        "{}",
        expected.id
    );
    assert_eq!(
        prediction.risk_band(),
        expected_band(prediction.churn_probability),
        "{}",
        expected.id
    );
}

fn assert_served_by(served_by: Option<&pb::ServedBy>, model: Bundled) {
    let served_by = served_by.expect("served_by");
    assert_eq!(
        (served_by.name.as_str(), served_by.version),
        (BUNDLED_MODEL, model.version)
    );
    assert_eq!(
        served_by.sha256,
        file_sha256(&format!("models/{}.onnx", model.file))
    );
}

#[tokio::test]
async fn score_matches_python_for_every_bundled_model() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    for &model in BUNDLED {
        for customer in customers(model.file) {
            let response = client
                .score(pb::ScoreRequest {
                    model: model_ref(BUNDLED_MODEL, 0, model.alias),
                    customer: Some(customer.to_proto()),
                    top_reasons: 0,
                })
                .await
                .unwrap_or_else(|s| panic!("{} {}: {s}", model.file, customer.id))
                .into_inner();
            assert_prediction(response.prediction.as_ref().expect("prediction"), &customer);
            assert_served_by(response.served_by.as_ref(), model);
        }
    }
}

#[tokio::test]
async fn score_batch_matches_python_in_request_order() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    for &model in BUNDLED {
        let rows = customers(model.file);
        let response = client
            .score_batch(pb::ScoreBatchRequest {
                model: model_ref(BUNDLED_MODEL, model.version, ""),
                customers: rows.iter().map(FixtureCustomer::to_proto).collect(),
                top_reasons: 0,
                ..Default::default()
            })
            .await
            .expect("batch")
            .into_inner();
        assert_served_by(response.served_by.as_ref(), model);
        assert_eq!(response.results.len(), rows.len());
        for (index, (result, expected)) in response.results.iter().zip(&rows).enumerate() {
            assert_eq!(result.row as usize, index);
            match &result.outcome {
                Some(pb::row_result::Outcome::Prediction(prediction)) => {
                    assert_prediction(prediction, expected)
                }
                other => panic!("{} row {index}: {other:?}", model.file),
            }
        }
    }
}

#[tokio::test]
async fn unseen_categories_score_like_python_where_the_encoder_ignores_them() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    for customer in fixture(
        "models/fixtures/telco-logreg.json",
        "unseen_category_customers",
    ) {
        let response = client
            .score(pb::ScoreRequest {
                model: None,
                customer: Some(customer.to_proto()),
                top_reasons: 0,
            })
            .await
            .expect("scored despite the unseen category")
            .into_inner();
        assert_prediction(response.prediction.as_ref().expect("prediction"), &customer);
    }
}

/// The bundled model that answers, or the code and a fragment of the message.
type Resolution = Result<Bundled, (Code, &'static str)>;

#[tokio::test]
async fn model_references_resolve_or_fail_with_the_right_code() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let customer = customers("telco-logreg").remove(0);
    let [logreg, lgbm] = [BUNDLED[0], BUNDLED[1]];
    let cases: &[(Option<pb::ModelRef>, Resolution)] = &[
        (None, Ok(logreg)),
        (model_ref("", 0, "production"), Ok(logreg)),
        (model_ref("", 0, "challenger"), Ok(lgbm)),
        (model_ref(BUNDLED_MODEL, 0, ""), Ok(logreg)),
        (model_ref(BUNDLED_MODEL, 2, ""), Ok(lgbm)),
        (model_ref(BUNDLED_MODEL, 1, ""), Ok(logreg)),
        (
            model_ref("no-such-model", 0, ""),
            Err((Code::NotFound, "model \"no-such-model\" not found")),
        ),
        (
            model_ref(BUNDLED_MODEL, 7, ""),
            Err((Code::NotFound, "model \"telco-churn\" has no version 7")),
        ),
        (
            model_ref(BUNDLED_MODEL, 0, "staging"),
            Err((Code::NotFound, "has no alias \"staging\"")),
        ),
        (
            model_ref(BUNDLED_MODEL, 1, "production"),
            Err((
                Code::InvalidArgument,
                "version 1 and alias \"production\" are both set",
            )),
        ),
    ];
    for (model, expected) in cases {
        let request = pb::ScoreRequest {
            model: model.clone(),
            customer: Some(customer.to_proto()),
            top_reasons: 0,
        };
        match (client.score(request).await, expected) {
            (Ok(response), Ok(bundled)) => {
                assert_served_by(response.into_inner().served_by.as_ref(), *bundled)
            }
            (Err(status), Err((code, fragment))) => {
                assert_eq!(status.code(), *code, "{model:?}: {status:?}");
                assert!(
                    status.message().contains(fragment),
                    "{model:?}: {}",
                    status.message()
                );
            }
            (outcome, expected) => panic!("{model:?}: got {outcome:?}, expected {expected:?}"),
        }
    }
}

#[tokio::test]
async fn an_invalid_customer_is_rejected_naming_every_offending_feature() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let mut customer = customers(LGBM.file).remove(0).to_proto();
    customer.features.remove("gender");
    customer.features.insert(
        "contract".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Text("Weekly".to_owned())),
        },
    );
    customer.features.insert(
        "tenure".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Flag(true)),
        },
    );
    customer.features.insert(
        "favourite_colour".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Text("red".to_owned())),
        },
    );
    let status = client
        .score(pb::ScoreRequest {
            model: model_ref(BUNDLED_MODEL, LGBM.version, ""),
            customer: Some(customer.clone()),
            top_reasons: 0,
        })
        .await
        .expect_err("invalid customer");
    assert_eq!(status.code(), Code::InvalidArgument);
    for fragment in [
        format!("customer {:?}", customer.customer_id),
        "feature `gender`: is required but absent".to_owned(),
        "feature `tenure`: expected a number, got the flag true".to_owned(),
        "feature `contract`: unknown category \"Weekly\"; expected one of \"Month-to-month\", \"One year\", \"Two year\"".to_owned(),
        "feature `favourite_colour`: is not an input of this model".to_owned(),
    ] {
        assert!(status.message().contains(&fragment), "{:?} lacks {fragment:?}", status.message());
    }

    let status = client
        .score(pb::ScoreRequest::default())
        .await
        .expect_err("no customer");
    assert_eq!(
        (status.code(), status.message()),
        (Code::InvalidArgument, "customer: required field is absent")
    );
}

#[tokio::test]
async fn a_bad_row_gets_its_own_error_and_the_others_are_scored() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = customers(LGBM.file);
    let mut batch: Vec<pb::Customer> = rows[..4].iter().map(FixtureCustomer::to_proto).collect();
    batch[1].features.insert(
        "paymentmethod".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Text("Crypto".to_owned())),
        },
    );
    batch[3].features.insert(
        "monthlycharges".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Number(f64::INFINITY)),
        },
    );
    let response = client
        .score_batch(pb::ScoreBatchRequest {
            model: model_ref(BUNDLED_MODEL, LGBM.version, ""),
            customers: batch,
            top_reasons: 0,
            ..Default::default()
        })
        .await
        .expect("a batch with bad rows still succeeds")
        .into_inner();
    let outcomes: Vec<_> = response
        .results
        .iter()
        .map(|r| (r.row, r.outcome.clone().expect("outcome")))
        .collect();
    assert_eq!(outcomes.len(), 4);
    for (row, outcome) in &outcomes {
        match (row, outcome) {
            (0 | 2, pb::row_result::Outcome::Prediction(prediction)) => {
                assert_prediction(prediction, &rows[*row as usize])
            }
            (1, pb::row_result::Outcome::Error(error)) => {
                assert_eq!(error.feature, "paymentmethod");
                assert!(
                    error
                        .message
                        .starts_with("row 1: feature `paymentmethod`: unknown category \"Crypto\""),
                    "{}",
                    error.message
                );
            }
            (3, pb::row_result::Outcome::Error(error)) => {
                assert_eq!(error.feature, "monthlycharges");
                assert!(
                    error.message.contains(
                        "row 3: feature `monthlycharges`: expected a finite number, got inf"
                    ),
                    "{}",
                    error.message
                );
            }
            other => panic!("unexpected outcome {other:?}"),
        }
    }
}

#[tokio::test]
async fn limits_answer_resource_exhausted() {
    let server = TestServer::start_with(|config| {
        config.max_batch_rows = 3;
        config.max_message_bytes = 4096;
    })
    .await;
    let mut client = server.scoring().await;
    let rows = customers("telco-logreg");
    let batch = |n: usize| pb::ScoreBatchRequest {
        model: None,
        customers: rows[..n].iter().map(FixtureCustomer::to_proto).collect(),
        top_reasons: 0,
        ..Default::default()
    };
    assert_eq!(
        client
            .score_batch(batch(3))
            .await
            .expect("at the limit")
            .into_inner()
            .results
            .len(),
        3
    );
    let status = client
        .score_batch(batch(4))
        .await
        .expect_err("over the row limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status.message(),
        "the batch has 4 customers; the limit is 3 (max_batch_rows)"
    );

    let status = client
        .score_batch(batch(40))
        .await
        .expect_err("over the message size limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status.message().contains("the limit is: 4096 bytes"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn score_stream_numbers_rows_from_the_start_of_the_stream() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = customers(LGBM.file);
    let mut bad = rows[4].to_proto();
    bad.features.remove("tenure");
    let messages = vec![
        pb::ScoreBatchRequest {
            model: model_ref(BUNDLED_MODEL, LGBM.version, ""),
            customers: rows[..2].iter().map(FixtureCustomer::to_proto).collect(),
            top_reasons: 0,
            ..Default::default()
        },
        // Later messages' model is ignored: the stream stays on the version it started with.
        pb::ScoreBatchRequest {
            model: model_ref(BUNDLED_MODEL, 1, ""),
            customers: vec![rows[2].to_proto(), rows[3].to_proto(), bad],
            top_reasons: 0,
            ..Default::default()
        },
        pb::ScoreBatchRequest {
            model: None,
            customers: vec![rows[5].to_proto()],
            top_reasons: 0,
            ..Default::default()
        },
    ];
    let mut responses = client
        .score_stream(tokio_stream::iter(messages))
        .await
        .expect("stream")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(response) = responses.next().await {
        let response = response.expect("stream message");
        assert_served_by(response.served_by.as_ref(), LGBM);
        seen.extend(response.results);
    }
    assert_eq!(
        seen.iter().map(|r| r.row).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4, 5]
    );
    for result in &seen {
        match (&result.outcome, result.row) {
            (Some(pb::row_result::Outcome::Error(error)), 4) => {
                assert_eq!(error.feature, "tenure");
                assert!(
                    error
                        .message
                        .starts_with("row 4: feature `tenure`: is required but absent"),
                    "{}",
                    error.message
                );
            }
            (Some(pb::row_result::Outcome::Prediction(prediction)), row) => {
                assert_prediction(prediction, &rows[row as usize])
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn shutdown_drains_and_serve_returns_ok() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let customer = Some(customers("telco-logreg").remove(0).to_proto());
    client
        .score(pb::ScoreRequest {
            model: None,
            customer,
            top_reasons: 0,
        })
        .await
        .expect("served before shutdown");
    server.stop().await.expect("serve ends cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_stays_on_its_version_when_the_alias_moves_and_resumes_its_numbering() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let mut registry = server.registry().await;
    let logreg = customers(BUNDLED[0].file);
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    let mut responses = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream")
        .into_inner();
    // A resumed job: rows continue from 1,000.
    requests
        .send(pb::ScoreBatchRequest {
            model: model_ref(BUNDLED_MODEL, 0, "production"),
            customers: logreg[..3].iter().map(FixtureCustomer::to_proto).collect(),
            first_row: 1_000,
            ..Default::default()
        })
        .await
        .expect("send");
    let first = responses.next().await.expect("answer").expect("ok");
    assert_served_by(first.served_by.as_ref(), BUNDLED[0]);

    registry
        .set_alias(pb::SetAliasRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: LGBM.version,
            ..Default::default()
        })
        .await
        .expect("move production to LightGBM");
    let unary = client
        .score(pb::ScoreRequest {
            model: model_ref(BUNDLED_MODEL, 0, "production"),
            customer: Some(logreg[3].to_proto()),
            top_reasons: 0,
        })
        .await
        .expect("score")
        .into_inner();
    assert_served_by(unary.served_by.as_ref(), LGBM);

    requests
        .send(pb::ScoreBatchRequest {
            customers: logreg[3..6].iter().map(FixtureCustomer::to_proto).collect(),
            first_row: 7,
            ..Default::default()
        })
        .await
        .expect("send");
    drop(requests);
    let second = responses.next().await.expect("answer").expect("ok");
    assert!(responses.next().await.is_none());
    assert_served_by(second.served_by.as_ref(), BUNDLED[0]);
    let results: Vec<&pb::RowResult> = first.results.iter().chain(&second.results).collect();
    assert_eq!(
        results.iter().map(|r| r.row).collect::<Vec<_>>(),
        [1_000, 1_001, 1_002, 1_003, 1_004, 1_005],
        "a later message's first_row is ignored"
    );
    for (result, expected) in results.iter().zip(&logreg) {
        match &result.outcome {
            Some(pb::row_result::Outcome::Prediction(p)) => assert_prediction(p, expected),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_would_number_rows_past_u32_is_refused() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = customers(LGBM.file);
    let message = pb::ScoreBatchRequest {
        customers: rows[..2].iter().map(FixtureCustomer::to_proto).collect(),
        first_row: u32::MAX,
        ..Default::default()
    };
    let mut responses = client
        .score_stream(tokio_stream::iter([message]))
        .await
        .expect("stream")
        .into_inner();
    let status = responses
        .next()
        .await
        .expect("an answer")
        .expect_err("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().starts_with("first_row:"),
        "{}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_reading_stops_the_writer() {
    const MESSAGES: usize = 150;
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows = customers(LGBM.file);
    let message = pb::ScoreBatchRequest {
        customers: (0..1_000)
            .map(|i| rows[i % rows.len()].to_proto())
            .collect(),
        ..Default::default()
    };
    let bytes = prost::Message::encoded_len(&message);
    let (requests, receiver) = tokio::sync::mpsc::channel(1);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&sent);
    let writer = tokio::spawn(async move {
        for _ in 0..MESSAGES {
            if requests.send(message.clone()).await.is_err() {
                return;
            }
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let mut responses = client
        .score_stream(tokio_stream::wrappers::ReceiverStream::new(receiver))
        .await
        .expect("stream")
        .into_inner();
    responses.next().await.expect("answer").expect("ok");
    // The reader stalls; the writer may fill the buffers and windows on the way, then
    // must wait instead of pushing the whole job into the server's memory.
    let mut stalled_at = sent.load(std::sync::atomic::Ordering::Relaxed);
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let now = sent.load(std::sync::atomic::Ordering::Relaxed);
        if now == stalled_at {
            break;
        }
        stalled_at = now;
    }
    // Server: 16 MiB of connection window for requests, 2 responses queued, one being
    // scored; the client's own buffers: a few more. Far below the 150 it wants to send.
    let window_messages = (16 << 20) / bytes;
    assert!(
        stalled_at < window_messages + 16,
        "{stalled_at} messages of {bytes} bytes sent while nobody read (window holds {window_messages})"
    );
    let mut answered = 1;
    while let Some(response) = responses.next().await {
        assert_eq!(response.expect("ok").results.len(), 1_000);
        answered += 1;
    }
    writer.await.expect("writer");
    assert_eq!(
        answered, MESSAGES,
        "every message answered once the reader resumes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_score_exactly_as_rows_do_errors_included() {
    let server = TestServer::start().await;
    let client = server.scoring().await;
    for model in BUNDLED {
        let mut rows: Vec<pb::Customer> = customers(model.file)
            .iter()
            .map(FixtureCustomer::to_proto)
            .collect();
        // A text where a number belongs (that column becomes `mixed`), an unknown
        // category, an infinite number, and a feature the model does not know.
        rows[1].features.insert(
            "tenure".to_owned(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Text("forty".to_owned())),
            },
        );
        rows[2].features.insert(
            "contract".to_owned(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Text("Ten year".to_owned())),
            },
        );
        rows[3].features.insert(
            "monthlycharges".to_owned(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Number(f64::INFINITY)),
            },
        );
        for row in &mut rows {
            row.features.insert(
                "shoe_size".to_owned(),
                pb::FeatureValue {
                    kind: Some(pb::feature_value::Kind::Number(42.0)),
                },
            );
        }
        let ask = |batch: pb::ScoreBatchRequest| {
            let mut client = client.clone();
            async move { client.score_batch(batch).await.expect("batch").into_inner() }
        };
        let model_ref = model_ref(BUNDLED_MODEL, model.version, "");
        let by_rows = ask(pb::ScoreBatchRequest {
            model: model_ref.clone(),
            customers: rows.clone(),
            ..Default::default()
        })
        .await;
        let by_columns = ask(pb::ScoreBatchRequest {
            model: model_ref.clone(),
            columns: Some(tests::customer_columns(&rows)),
            ..Default::default()
        })
        .await;
        assert_eq!(by_rows.results, by_columns.results, "{}", model.file);
        assert!(
            by_rows.results.iter().all(|r| matches!(
                &r.outcome,
                Some(pb::row_result::Outcome::Error(e)) if e.message.contains("`shoe_size`: is not an input")
            )),
            "every row names the unknown column"
        );

        for row in &mut rows {
            row.features.remove("shoe_size");
        }
        let by_rows = ask(pb::ScoreBatchRequest {
            model: model_ref.clone(),
            customers: rows.clone(),
            ..Default::default()
        })
        .await;
        let by_columns = ask(pb::ScoreBatchRequest {
            model: model_ref,
            columns: Some(tests::customer_columns(&rows)),
            ..Default::default()
        })
        .await;
        assert_eq!(by_rows.results, by_columns.results, "{}", model.file);
        let scored = by_columns
            .results
            .iter()
            .filter(|r| matches!(r.outcome, Some(pb::row_result::Outcome::Prediction(_))))
            .count();
        assert!(scored >= rows.len() - 3, "{}: {scored} scored", model.file);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_columns_are_refused_naming_the_column() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let rows: Vec<pb::Customer> = customers(LGBM.file)[..3]
        .iter()
        .map(FixtureCustomer::to_proto)
        .collect();
    let mut ragged = tests::customer_columns(&rows);
    ragged.customer_ids.pop();
    let both = pb::ScoreBatchRequest {
        customers: rows.clone(),
        columns: Some(tests::customer_columns(&rows)),
        ..Default::default()
    };
    let short = pb::ScoreBatchRequest {
        columns: Some(ragged),
        ..Default::default()
    };
    for (request, expected) in [
        (
            both,
            "columns: send the customers as rows or as columns, not both",
        ),
        (
            short,
            "values for 2 customer_ids; expected one per customer",
        ),
    ] {
        let status = client.score_batch(request).await.expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains(expected), "{}", status.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_scored_in_parts_equals_it_scored_in_small_batches() {
    let server = TestServer::start().await;
    let mut client = server.scoring().await;
    let fixture_rows: Vec<pb::Customer> = customers(LGBM.file)
        .iter()
        .map(FixtureCustomer::to_proto)
        .collect();
    // 5,000 rows, past the size that is cut into one part per core, with bad rows spread
    // over every part.
    let mut rows: Vec<pb::Customer> = (0..5_000)
        .map(|i| {
            let mut row = fixture_rows[i % fixture_rows.len()].clone();
            row.customer_id = format!("C{i}");
            row
        })
        .collect();
    for i in (17..5_000).step_by(613) {
        rows[i].features.insert(
            "tenure".to_owned(),
            pb::FeatureValue {
                kind: Some(pb::feature_value::Kind::Text("forty".to_owned())),
            },
        );
    }
    let ask = |rows: &[pb::Customer]| pb::ScoreBatchRequest {
        model: model_ref(BUNDLED_MODEL, LGBM.version, ""),
        columns: Some(tests::customer_columns(rows)),
        ..Default::default()
    };
    let whole = client
        .score_batch(ask(&rows))
        .await
        .expect("the large batch")
        .into_inner()
        .results;
    let mut in_small = Vec::new();
    for (n, chunk) in rows.chunks(500).enumerate() {
        let results = client
            .score_batch(ask(chunk))
            .await
            .expect("a small batch")
            .into_inner()
            .results;
        in_small.extend(results.into_iter().map(|mut r| {
            let offset = (n * 500) as u32;
            r.row += offset;
            if let Some(pb::row_result::Outcome::Error(error)) = &mut r.outcome {
                let local = format!("row {}: ", r.row - offset);
                error.message = error
                    .message
                    .replacen(&local, &format!("row {}: ", r.row), 1);
            }
            r
        }));
    }
    assert_eq!(whole.len(), 5_000);
    assert_eq!(whole, in_small);
    let rejected = whole
        .iter()
        .filter(|r| matches!(r.outcome, Some(pb::row_result::Outcome::Error(_))))
        .count();
    assert_eq!(rejected, 9);
}
