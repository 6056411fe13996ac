//! Evaluations through the real server: the bundled versions on the seeded hold-out
//! dataset against scikit-learn's metrics of the same predictions, stored and listed;
//! rejected rows counted; champion/challenger by DeLong; promotion gates both ways;
//! threshold suggestions and live threshold changes.

use churn_api::v1 as pb;
use tests::{
    BUNDLED_MODEL, TestServer, assert_close, assert_metrics_match, fixture, metrics_fixture,
    metrics_from_proto, upload_dataset,
};
use tonic::Code;

const HOLDOUT: &str = "telco-holdout";

fn version(number: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: number,
        alias: String::new(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_versions_evaluate_like_scikit_learn_and_are_stored() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let fixture = metrics_fixture();
    let mut ids = Vec::new();
    for (number, case) in [(1, 0), (2, 1)] {
        let response = scoring
            .evaluate(pb::EvaluateRequest {
                model: version(number),
                dataset: HOLDOUT.to_owned(),
                rows: Vec::new(),
                threshold: 0.0,
                profit: None,
            })
            .await
            .expect("evaluates")
            .into_inner();
        assert_eq!(response.rejected_rows, 0);
        assert_eq!(
            response.served_by.as_ref().expect("served_by").version,
            number
        );
        let expected = &fixture["cases"][case];
        assert_metrics_match(
            expected["name"].as_str().expect("name"),
            &metrics_from_proto(response.metrics.as_ref().expect("metrics")),
            &expected["expected"],
        );
        ids.push(response.evaluation_id);
    }
    let listed = server
        .registry()
        .await
        .list_evaluations(pb::ListEvaluationsRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 0,
        })
        .await
        .expect("lists")
        .into_inner()
        .evaluations;
    assert_eq!(
        listed
            .iter()
            .map(|e| e.evaluation_id.clone())
            .collect::<Vec<_>>(),
        ids.iter().rev().cloned().collect::<Vec<_>>(),
        "newest first"
    );
    let stored = &listed[1];
    assert_eq!((stored.dataset.as_str(), stored.threshold), (HOLDOUT, 0.5));
    assert_metrics_match(
        "stored",
        &metrics_from_proto(stored.metrics.as_ref().expect("metrics")),
        &fixture["cases"][0]["expected"],
    );
    let one_version = server
        .registry()
        .await
        .list_evaluations(pb::ListEvaluationsRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 2,
        })
        .await
        .expect("lists")
        .into_inner()
        .evaluations;
    assert_eq!(one_version.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_are_counted_and_bad_requests_refused() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let rows: Vec<pb::LabeledCustomer> = fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .take(40)
        .enumerate()
        .map(|(i, c)| pb::LabeledCustomer {
            customer: Some(c.to_proto()),
            churned: i % 3 == 0,
        })
        .collect();
    let mut with_bad = rows.clone();
    with_bad[7]
        .customer
        .as_mut()
        .expect("customer")
        .features
        .remove("contract");
    let response = scoring
        .evaluate(pb::EvaluateRequest {
            model: version(1),
            dataset: String::new(),
            rows: with_bad,
            threshold: 0.4,
            profit: None,
        })
        .await
        .expect("evaluates the valid rows")
        .into_inner();
    assert_eq!(response.rejected_rows, 1);
    assert_eq!(response.rejections[0].feature, "contract");
    assert!(
        response.rejections[0].message.starts_with("row 7:"),
        "{}",
        response.rejections[0].message
    );
    assert_eq!(response.metrics.expect("metrics").rows, 39);

    let request = |model: Option<pb::ModelRef>,
                   dataset: &str,
                   rows: Vec<pb::LabeledCustomer>,
                   threshold: f64| pb::EvaluateRequest {
        model,
        dataset: dataset.to_owned(),
        rows,
        threshold,
        profit: None,
    };
    let one_class: Vec<pb::LabeledCustomer> = rows
        .iter()
        .cloned()
        .map(|mut r| {
            r.churned = true;
            r
        })
        .collect();
    let mut registry = server.registry().await;
    upload_dataset(
        &mut registry,
        "narrow",
        b"customerid,tenure,churn\nA,1,Yes\nB,3,No\n",
    )
    .await
    .expect("uploads");
    let cases = [
        (
            request(version(1), "", one_class, 0.0),
            Code::InvalidArgument,
            "ROC AUC",
        ),
        (
            request(version(1), "", Vec::new(), 0.0),
            Code::InvalidArgument,
            "dataset or rows",
        ),
        (
            request(version(1), HOLDOUT, Vec::new(), 1.5),
            Code::InvalidArgument,
            "threshold: 1.5",
        ),
        (
            request(version(1), HOLDOUT, rows.clone(), 0.0),
            Code::InvalidArgument,
            "both set",
        ),
        (
            request(version(1), "missing", Vec::new(), 0.0),
            Code::NotFound,
            "missing",
        ),
        (
            request(version(2), "narrow", Vec::new(), 0.0),
            Code::FailedPrecondition,
            "no column for feature(s) gender, seniorcitizen",
        ),
    ];
    for (request, code, message) in cases {
        let status = scoring.evaluate(request).await.expect_err(message);
        assert_eq!(status.code(), code, "{}", status.message());
        assert!(status.message().contains(message), "{}", status.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn champion_and_challenger_compare_by_delong_and_gate_promotions() {
    let server = TestServer::start().await;
    let fixture = metrics_fixture();
    let compared = server
        .scoring()
        .await
        .compare(pb::CompareRequest {
            champion: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version: 0,
                alias: "production".to_owned(),
            }),
            challenger: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version: 0,
                alias: "challenger".to_owned(),
            }),
            dataset: HOLDOUT.to_owned(),
            rows: Vec::new(),
            threshold: 0.0,
            profit: None,
        })
        .await
        .expect("compares")
        .into_inner();
    assert_eq!(compared.paired_rows, 2113);
    let difference = compared.roc_auc_difference.expect("difference");
    let expected = &fixture["comparison"];
    assert_close("difference", difference.difference, &expected["difference"]);
    assert_close(
        "standard error",
        difference.standard_error,
        &expected["standard_error"],
    );
    assert_close("p value", difference.p_value, &expected["p_value"]);
    assert!(difference.lower < difference.difference && difference.difference < difference.upper);

    let mut registry = server.registry().await;
    let promote = |gate: pb::PromotionGate| pb::SetAliasRequest {
        name: BUNDLED_MODEL.to_owned(),
        alias: "production".to_owned(),
        version: 2,
        gate: Some(gate),
    };
    let production = || pb::GetModelVersionRequest {
        model: Some(pb::ModelRef {
            name: BUNDLED_MODEL.to_owned(),
            version: 0,
            alias: "production".to_owned(),
        }),
    };
    let strict = pb::PromotionGate {
        dataset: HOLDOUT.to_owned(),
        min_roc_auc: None,
        max_roc_auc_drop: Some(0.001),
        ..Default::default()
    };
    let refused = registry
        .set_alias(promote(strict))
        .await
        .expect_err("the challenger ranks worse");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("ROC AUC 0.8536 is 0.0046 below version 1's 0.8581"),
        "{}",
        refused.message()
    );
    assert_eq!(
        registry
            .get_model_version(production())
            .await
            .expect("get")
            .into_inner()
            .version,
        1,
        "nothing moved"
    );

    let too_high = pb::PromotionGate {
        dataset: HOLDOUT.to_owned(),
        min_roc_auc: Some(0.9),
        max_roc_auc_drop: None,
        ..Default::default()
    };
    let status = registry
        .set_alias(promote(too_high))
        .await
        .expect_err("below the minimum");
    assert!(
        status.message().contains("below the gate's minimum 0.9"),
        "{}",
        status.message()
    );
    let no_dataset = pb::PromotionGate {
        dataset: String::new(),
        min_roc_auc: Some(0.5),
        max_roc_auc_drop: None,
        ..Default::default()
    };
    assert_eq!(
        registry
            .set_alias(promote(no_dataset))
            .await
            .expect_err("no dataset")
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        registry
            .get_model_version(production())
            .await
            .expect("get")
            .into_inner()
            .version,
        1
    );

    let tolerant = pb::PromotionGate {
        dataset: HOLDOUT.to_owned(),
        min_roc_auc: Some(0.85),
        max_roc_auc_drop: Some(0.01),
        ..Default::default()
    };
    let moved = registry
        .set_alias(promote(tolerant))
        .await
        .expect("within the allowed drop")
        .into_inner();
    assert_eq!(moved.version, 2);
    assert_eq!(
        registry
            .get_model_version(production())
            .await
            .expect("get")
            .into_inner()
            .version,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thresholds_are_suggested_like_scikit_learn_and_changed_live() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let expected = &metrics_fixture()["thresholds"];
    for objective in ["f1", "recall@precision=0.6", "top-k=500"] {
        let suggestion = scoring
            .suggest_threshold(pb::SuggestThresholdRequest {
                model: version(1),
                dataset: HOLDOUT.to_owned(),
                rows: Vec::new(),
                objective: objective.to_owned(),
                profit: None,
            })
            .await
            .expect(objective)
            .into_inner();
        assert_close(
            objective,
            suggestion.threshold,
            &expected[objective]["threshold"],
        );
        assert_eq!(suggestion.rows, 2113);
    }
    let status = scoring
        .suggest_threshold(pb::SuggestThresholdRequest {
            model: version(1),
            dataset: HOLDOUT.to_owned(),
            rows: Vec::new(),
            objective: "accuracy".to_owned(),
            profit: None,
        })
        .await
        .expect_err("unknown objective");
    assert_eq!(status.code(), Code::InvalidArgument);

    let customer = fixture("models/fixtures/telco-logreg.json", "customers")
        .into_iter()
        .find(|c| c.churn_probability > 0.4 && c.churn_probability < 0.5)
        .expect("a customer between 0.4 and 0.5");
    let score = |scoring: &mut churn_api::v1::scoring_service_client::ScoringServiceClient<
        tonic::transport::Channel,
    >| {
        let request = pb::ScoreRequest {
            model: version(1),
            customer: Some(customer.to_proto()),
            top_reasons: 0,
        };
        let mut scoring = scoring.clone();
        async move {
            scoring
                .score(request)
                .await
                .expect("scores")
                .into_inner()
                .prediction
                .expect("prediction")
                .will_churn
        }
    };
    assert!(!score(&mut scoring).await, "below the bundled 0.5");
    let mut registry = server.registry().await;
    let set = |threshold: f64| pb::SetThresholdRequest {
        name: BUNDLED_MODEL.to_owned(),
        version: 1,
        threshold,
    };
    let updated = registry
        .set_threshold(set(0.4))
        .await
        .expect("sets")
        .into_inner();
    assert_eq!(updated.threshold, 0.4);
    assert!(
        score(&mut scoring).await,
        "the loaded version follows at once"
    );
    let status = registry
        .set_threshold(set(1.5))
        .await
        .expect_err("out of range");
    assert_eq!(status.code(), Code::InvalidArgument);
}
