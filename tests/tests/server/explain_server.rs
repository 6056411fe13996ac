//! Explanations and importance through the real server: the seeded versions explained
//! against their seeded reference dataset, top reasons on every scoring RPC, and every
//! refusal with its code.

use churn_api::v1 as pb;
use tests::{
    BUNDLED, BUNDLED_MODEL, ExplainedCustomer, LGBM, TestServer, explanation_fixture, register,
    repo_bytes, upload_dataset,
};
use tonic::Code;

const TREE_TOLERANCE: f64 = 1e-5;

fn model(version: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version,
        alias: String::new(),
    })
}

fn first_version_of(name: &str) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: name.to_owned(),
        version: 1,
        alias: String::new(),
    })
}

fn contribution(response: &pb::ExplainResponse, feature: &str) -> f64 {
    response
        .attributions
        .iter()
        .find(|a| a.feature == feature)
        .unwrap_or_else(|| panic!("no attribution for {feature}"))
        .contribution
}

fn assert_additive(response: &pb::ExplainResponse) {
    let sum: f64 = response.attributions.iter().map(|a| a.contribution).sum();
    assert!((response.base_value + sum - response.output_value).abs() <= 1e-6);
}

async fn explain(
    server: &TestServer,
    model: Option<pb::ModelRef>,
    customer: &ExplainedCustomer,
) -> Result<pb::ExplainResponse, tonic::Status> {
    server
        .scoring()
        .await
        .explain(pb::ExplainRequest {
            model,
            customer: Some(customer.customer.to_proto()),
        })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeded_versions_explain_like_python_shap() {
    let server = TestServer::start().await;
    let trees = explanation_fixture("models/fixtures/explain-telco-lgbm.json");
    for expected in &trees.customers {
        let response = explain(&server, model(LGBM.version), expected)
            .await
            .expect("explains");
        assert_eq!(response.method, "interventional-tree-shap");
        assert_eq!(response.max_abs_error, 0.0);
        assert_eq!(
            response.served_by.as_ref().expect("served_by").version,
            LGBM.version
        );
        assert_additive(&response);
        assert!((response.output_value - expected.output_value).abs() <= TREE_TOLERANCE);
        for (feature, shap_value) in &expected.attributions {
            let ours = contribution(&response, feature);
            assert!(
                (ours - shap_value).abs() <= TREE_TOLERANCE,
                "{feature}: {ours} vs {shap_value}"
            );
        }
    }

    let logistic = explanation_fixture("models/fixtures/explain-telco-logreg.json");
    for expected in logistic.customers.iter().take(10) {
        let response = explain(&server, None, expected)
            .await
            .expect("explains production");
        assert_eq!(
            response.served_by.as_ref().expect("served_by").version,
            BUNDLED[0].version
        );
        assert_eq!(response.method, "antithetic-permutation-shapley");
        assert_additive(&response);
        for (feature, shap_value) in &expected.attributions {
            let gap = (contribution(&response, feature) - shap_value).abs();
            assert!(
                gap <= response.max_abs_error,
                "{feature}: {gap:e} > {:e}",
                response.max_abs_error
            );
        }
        let tenure = response
            .attributions
            .iter()
            .find(|a| a.feature == "tenure")
            .expect("tenure");
        let sent = expected
            .customer
            .to_proto()
            .features
            .remove("tenure")
            .expect("tenure sent");
        assert_eq!(
            tenure.value.as_ref(),
            Some(&sent),
            "the customer's own value comes back"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_reasons_are_the_largest_attributions_on_every_scoring_rpc() {
    let server = TestServer::start().await;
    let fixture = explanation_fixture("models/fixtures/explain-telco-lgbm.json");
    let customers: Vec<pb::Customer> = fixture
        .customers
        .iter()
        .take(4)
        .map(|c| c.customer.to_proto())
        .collect();
    let mut scoring = server.scoring().await;

    let explained = explain(&server, model(LGBM.version), &fixture.customers[0])
        .await
        .expect("explains");
    let mut largest = explained.attributions.clone();
    largest.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    let scored = scoring
        .score(pb::ScoreRequest {
            model: model(LGBM.version),
            customer: Some(customers[0].clone()),
            top_reasons: 3,
        })
        .await
        .expect("scores with reasons")
        .into_inner()
        .prediction
        .expect("prediction");
    assert_eq!(scored.top_reasons, largest[..3].to_vec());

    let mut batch = customers.clone();
    batch[2].features.remove("tenure");
    let results = scoring
        .score_batch(pb::ScoreBatchRequest {
            model: model(LGBM.version),
            customers: batch.clone(),
            top_reasons: 2,
            ..Default::default()
        })
        .await
        .expect("batch with reasons")
        .into_inner()
        .results;
    assert_eq!(results.len(), 4);
    for result in &results {
        match (&result.outcome, result.row) {
            (Some(pb::row_result::Outcome::Error(error)), 2) => assert_eq!(error.feature, "tenure"),
            (Some(pb::row_result::Outcome::Prediction(p)), _) => {
                assert_eq!(p.top_reasons.len(), 2);
                assert!(p.top_reasons[0].contribution.abs() >= p.top_reasons[1].contribution.abs());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let Some(pb::row_result::Outcome::Prediction(first)) = &results[0].outcome else {
        panic!("row 0 scored");
    };
    assert_eq!(first.top_reasons, largest[..2].to_vec());

    let request = pb::ScoreBatchRequest {
        model: model(LGBM.version),
        customers: batch,
        top_reasons: 1,
        ..Default::default()
    };
    let mut stream = scoring
        .score_stream(tokio_stream::iter(vec![request.clone(), request]))
        .await
        .expect("stream")
        .into_inner();
    let mut rows = 0;
    while let Some(message) = stream.message().await.expect("stream message") {
        for result in message.results {
            if let Some(pb::row_result::Outcome::Prediction(p)) = result.outcome {
                assert_eq!(p.top_reasons.len(), 1);
            }
            rows += 1;
        }
    }
    assert_eq!(rows, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_without_a_usable_reference_dataset_says_how_to_fix_it() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let version = register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: "unexplained".to_owned(),
            ..Default::default()
        },
        &repo_bytes("models/telco-lgbm.onnx"),
    )
    .await
    .expect("registers");
    assert_eq!(version.reference_dataset, "");
    let fixture = explanation_fixture("models/fixtures/explain-telco-lgbm.json");
    let customer = &fixture.customers[0];

    let refused = explain(&server, first_version_of("unexplained"), customer)
        .await
        .expect_err("no reference");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused
            .message()
            .contains("churnctl set-reference unexplained 1 DATASET"),
        "{}",
        refused.message()
    );
    let mut scoring = server.scoring().await;
    let with_reasons = scoring
        .score(pb::ScoreRequest {
            model: first_version_of("unexplained"),
            customer: Some(customer.customer.to_proto()),
            top_reasons: 2,
        })
        .await
        .expect_err("reasons need the reference");
    assert_eq!(with_reasons.code(), Code::FailedPrecondition);
    scoring
        .score(pb::ScoreRequest {
            model: first_version_of("unexplained"),
            customer: Some(customer.customer.to_proto()),
            top_reasons: 0,
        })
        .await
        .expect("scoring alone is unaffected");

    let set = |dataset: &str| pb::SetReferenceDatasetRequest {
        name: "unexplained".to_owned(),
        version: 1,
        dataset: dataset.to_owned(),
    };
    let unknown = registry
        .set_reference_dataset(set("nowhere"))
        .await
        .expect_err("unknown dataset");
    assert_eq!(unknown.code(), Code::NotFound);

    // A dataset without the model's columns is refused at explanation time, by name.
    let narrow = "customerid,tenure,churn\nA,1,Yes\nB,30,No\n";
    upload_dataset(&mut registry, "narrow", narrow.as_bytes())
        .await
        .expect("uploads");
    registry
        .set_reference_dataset(set("narrow"))
        .await
        .expect("names it");
    let unusable = explain(&server, first_version_of("unexplained"), customer)
        .await
        .expect_err("narrow");
    assert_eq!(unusable.code(), Code::FailedPrecondition);
    assert!(
        unusable.message().contains("contract"),
        "{}",
        unusable.message()
    );

    let updated = registry
        .set_reference_dataset(set("telco-holdout"))
        .await
        .expect("names the reference later")
        .into_inner();
    assert_eq!(updated.reference_dataset, "telco-holdout");
    let response = explain(&server, first_version_of("unexplained"), customer)
        .await
        .expect("explains now");
    assert!((response.output_value - customer.output_value).abs() <= TREE_TOLERANCE);

    let mut invalid = customer.clone();
    invalid
        .customer
        .features
        .retain(|(name, _)| name != "contract");
    let refused = explain(&server, first_version_of("unexplained"), &invalid)
        .await
        .expect_err("invalid customer");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("feature `contract`"),
        "{}",
        refused.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feature_importance_by_every_method() {
    let server = TestServer::start_with(|config| config.importance_rows = 400).await;
    let mut scoring = server.scoring().await;
    let importance = |version: u32,
                      method: pb::ImportanceMethod,
                      dataset: &str,
                      rows: Vec<pb::LabeledCustomer>| {
        pb::FeatureImportanceRequest {
            model: model(version),
            method: method.into(),
            dataset: dataset.to_owned(),
            rows,
        }
    };
    let sorted = |features: &[pb::FeatureScore]| {
        features.len() == 19
            && features
                .windows(2)
                .all(|w| w[0].importance >= w[1].importance)
    };

    let native = scoring
        .feature_importance(importance(
            LGBM.version,
            pb::ImportanceMethod::Unspecified,
            "",
            Vec::new(),
        ))
        .await
        .expect("trees have a native measure")
        .into_inner();
    assert_eq!(native.method(), pb::ImportanceMethod::ModelNative);
    assert!(sorted(&native.features));

    let linear = scoring
        .feature_importance(importance(
            1,
            pb::ImportanceMethod::ModelNative,
            "",
            Vec::new(),
        ))
        .await
        .expect("the logistic pipeline's coefficients over its reference rows")
        .into_inner();
    assert!(sorted(&linear.features));
    assert_eq!(linear.features[0].feature, "tenure");

    let mut registry = server.registry().await;
    register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: "bayes".to_owned(),
            reference_dataset: "telco-holdout".to_owned(),
            ..Default::default()
        },
        &repo_bytes("tests/models/telco-naive-bayes.onnx"),
    )
    .await
    .expect("registers");
    let mut native = importance(1, pb::ImportanceMethod::ModelNative, "", Vec::new());
    native.model = first_version_of("bayes");
    let refused = scoring
        .feature_importance(native)
        .await
        .expect_err("naive Bayes has no native measure");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("PERMUTATION"),
        "{}",
        refused.message()
    );

    let permutation = scoring
        .feature_importance(importance(
            1,
            pb::ImportanceMethod::Permutation,
            "telco-holdout",
            Vec::new(),
        ))
        .await
        .expect("permutation on the dataset")
        .into_inner();
    assert!(sorted(&permutation.features));
    assert!(permutation.features[0].importance > 0.0 && permutation.features[0].stddev > 0.0);

    let fixture = explanation_fixture("models/fixtures/explain-telco-lgbm.json");
    let rows: Vec<pb::LabeledCustomer> = fixture
        .customers
        .iter()
        .take(8)
        .map(|c| pb::LabeledCustomer {
            customer: Some(c.customer.to_proto()),
            churned: false,
        })
        .collect();
    let shap = scoring
        .feature_importance(importance(
            LGBM.version,
            pb::ImportanceMethod::MeanAbsShap,
            "",
            rows.clone(),
        ))
        .await
        .expect("mean |shap| of inline rows")
        .into_inner();
    assert!(sorted(&shap.features));
    for score in &shap.features {
        let expected = fixture.customers[..8]
            .iter()
            .map(|c| {
                c.attributions
                    .iter()
                    .find(|(f, _)| *f == score.feature)
                    .expect("feature")
                    .1
                    .abs()
            })
            .sum::<f64>()
            / 8.0;
        assert!(
            (score.importance - expected).abs() <= TREE_TOLERANCE,
            "{}: {} vs {expected}",
            score.feature,
            score.importance
        );
    }

    let both = scoring
        .feature_importance(importance(
            LGBM.version,
            pb::ImportanceMethod::Permutation,
            "telco-holdout",
            rows,
        ))
        .await
        .expect_err("rows and dataset");
    assert_eq!(both.code(), Code::InvalidArgument);
    let mut unknown = importance(
        LGBM.version,
        pb::ImportanceMethod::Permutation,
        "",
        Vec::new(),
    );
    unknown.method = 9;
    let status = scoring
        .feature_importance(unknown)
        .await
        .expect_err("unknown method");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("method: 9"),
        "{}",
        status.message()
    );
}
