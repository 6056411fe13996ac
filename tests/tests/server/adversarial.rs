//! Hostile requests against the real server: huge maps, 10 MB strings, NaN, infinities and
//! negative zero, invalid UTF-8 in metadata, unknown enum values, version 2^32 − 1, names
//! with path characters and SQL metacharacters in every string field. Each gets a clear
//! `INVALID_ARGUMENT`, `NOT_FOUND` or `RESOURCE_EXHAUSTED` whose message stays short, the
//! server keeps answering, and no rejected write leaves a row or a file behind.

use churn_api::v1 as pb;
use churnserve::Token;
use tests::{
    BUNDLED_MODEL, TestServer, files_below, fixture, register, repo_bytes, upload_dataset,
};
use tonic::Code;
use tonic::metadata::MetadataMap;

const WRITE_TOKEN: &str = "write-secret";
/// No rejection message repeats a hostile input at length.
const LONGEST_MESSAGE: usize = 2_000;

fn score(customer: pb::Customer) -> tonic::Request<pb::ScoreRequest> {
    tonic::Request::new(pb::ScoreRequest {
        customer: Some(customer),
        ..Default::default()
    })
}

fn assert_refused<T: std::fmt::Debug>(
    case: &str,
    answer: Result<T, tonic::Status>,
    code: Code,
    says: &str,
) {
    let status = answer.expect_err(case);
    assert_eq!(status.code(), code, "{case}: {}", status.message());
    assert!(
        status.message().contains(says),
        "{case}: {:?} does not say {says:?}",
        status.message()
    );
    assert!(
        status.message().len() <= LONGEST_MESSAGE,
        "{case}: a message of {} bytes",
        status.message().len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_refused_clearly_and_leave_nothing_behind() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let mut registry = server.registry().await;
    let customer = fixture("models/fixtures/telco-logreg.json", "customers")[0].to_proto();
    let with = |name: &str, value: pb::feature_value::Kind| {
        let mut changed = customer.clone();
        changed
            .features
            .insert(name.to_owned(), pb::FeatureValue { kind: Some(value) });
        changed
    };

    let mut huge_map = customer.clone();
    for i in 0..100_000 {
        huge_map
            .features
            .insert(format!("feature-{i:06}"), pb::FeatureValue::default());
    }
    assert_refused(
        "100,000 unknown features",
        scoring.score(score(huge_map)).await,
        Code::InvalidArgument,
        "and 99992 more features that are not inputs of this model",
    );
    // Answered: the server has seeded its registry.
    let files_before = files_below(server.data_dir());
    let ten_megabytes = "x".repeat(10 << 20);
    assert_refused(
        "a 10 MB text value",
        scoring
            .score(score(with(
                "contract",
                pb::feature_value::Kind::Text(ten_megabytes.clone()),
            )))
            .await,
        Code::InvalidArgument,
        "feature `contract`: text of 10485760 bytes is longer than the limit of 1024 bytes",
    );
    let mut long_id = customer.clone();
    long_id.customer_id = ten_megabytes.clone();
    assert_refused(
        "a 10 MB customer id",
        scoring.score(score(long_id)).await,
        Code::InvalidArgument,
        "the customer id has 10485760 bytes; at most 256 are accepted",
    );
    let mut long_name = customer.clone();
    long_name
        .features
        .insert(ten_megabytes.clone(), pb::FeatureValue::default());
    assert_refused(
        "a 10 MB feature name",
        scoring.score(score(long_name)).await,
        Code::InvalidArgument,
        "is not an input of this model",
    );
    assert_refused(
        "NaN where the model has no imputation",
        scoring
            .score(score(with(
                "tenure",
                pb::feature_value::Kind::Number(f64::NAN),
            )))
            .await,
        Code::InvalidArgument,
        "feature `tenure`: is missing, and this model has no imputation for it",
    );
    for infinity in [f64::INFINITY, f64::NEG_INFINITY] {
        assert_refused(
            "an infinite number",
            scoring
                .score(score(with(
                    "monthlycharges",
                    pb::feature_value::Kind::Number(infinity),
                )))
                .await,
            Code::InvalidArgument,
            "feature `monthlycharges`: expected a finite number",
        );
    }
    let probability = |answer: Result<tonic::Response<pb::ScoreResponse>, tonic::Status>| {
        answer
            .expect("scores")
            .into_inner()
            .prediction
            .expect("prediction")
            .churn_probability
    };
    let zero = probability(
        scoring
            .score(score(with("tenure", pb::feature_value::Kind::Number(0.0))))
            .await,
    );
    let negative_zero = probability(
        scoring
            .score(score(with("tenure", pb::feature_value::Kind::Number(-0.0))))
            .await,
    );
    assert_eq!(zero.to_bits(), negative_zero.to_bits(), "-0 scores as 0");
    let too_many = pb::ScoreBatchRequest {
        customers: vec![customer.clone(); 10_001],
        ..Default::default()
    };
    assert_refused(
        "one customer past max_batch_rows",
        scoring.score_batch(too_many).await,
        Code::ResourceExhausted,
        "the batch has 10001 customers; the limit is 10000",
    );
    let oversized = with(
        "contract",
        pb::feature_value::Kind::Text("x".repeat(65 << 20)),
    );
    let status = scoring.score(score(oversized)).await.expect_err("65 MiB");
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );

    // Metadata that is not UTF-8: ignored as an id, refused as a token.
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "x-request-id",
        http::HeaderValue::from_bytes(b"\xff\xfe-not-utf8").expect("opaque bytes"),
    );
    headers.insert(
        "authorization",
        http::HeaderValue::from_bytes(b"Bearer \xff\xfe").expect("opaque bytes"),
    );
    let mut odd = score(customer.clone());
    *odd.metadata_mut() = MetadataMap::from_headers(headers.clone());
    let answered = scoring
        .score(odd)
        .await
        .expect("the id is replaced, not fatal");
    let request_id = answered.metadata().get("x-request-id").expect("an id");
    assert!(request_id.to_str().is_ok_and(|id| !id.contains("not-utf8")));
    let mut odd_write = tonic::Request::new(pb::SetAliasRequest {
        name: BUNDLED_MODEL.to_owned(),
        alias: "staging".to_owned(),
        version: 1,
        gate: None,
    });
    *odd_write.metadata_mut() = MetadataMap::from_headers(headers);
    let guarded = TestServer::start_with(|config| {
        config.write_token = Some(Token::from(WRITE_TOKEN));
    })
    .await;
    let refused = guarded
        .registry()
        .await
        .set_alias(odd_write)
        .await
        .expect_err("bad token");
    assert!(
        matches!(
            refused.code(),
            Code::Unauthenticated | Code::PermissionDenied
        ),
        "{refused:?}"
    );

    assert_refused(
        "an unknown enum value",
        scoring
            .feature_importance(pb::FeatureImportanceRequest {
                method: 99,
                ..Default::default()
            })
            .await,
        Code::InvalidArgument,
        "method: 99 is not an ImportanceMethod",
    );
    let mut by_last_version = score(customer.clone());
    by_last_version.get_mut().model = Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: u32::MAX,
        alias: String::new(),
    });
    assert_refused(
        "version 2^32 - 1",
        scoring.score(by_last_version).await,
        Code::NotFound,
        "4294967295",
    );

    // Names with path characters and SQL metacharacters, in every registry write.
    let hostile_names = [
        "../../etc/passwd",
        "a/b",
        "x'; DROP TABLE model_versions; --",
        "\"); DELETE FROM aliases; --",
        "",
    ];
    let model_bytes = repo_bytes("models/telco-logreg.onnx");
    for name in hostile_names {
        assert_refused(
            "a hostile alias",
            registry
                .set_alias(pb::SetAliasRequest {
                    name: BUNDLED_MODEL.to_owned(),
                    alias: name.to_owned(),
                    version: 1,
                    gate: None,
                })
                .await,
            Code::InvalidArgument,
            "expected a letter or digit, then letters, digits, '.', '_' or '-'",
        );
        let metadata = pb::RegisterModelMetadata {
            name: name.to_owned(),
            ..Default::default()
        };
        let status = register(&mut registry, metadata, &model_bytes)
            .await
            .expect_err("a hostile model name");
        assert_eq!(status.code(), Code::InvalidArgument, "{name}: {status:?}");
        let dataset = upload_dataset(&mut registry, name, b"customerid,churn\n1,Yes\n")
            .await
            .expect_err("a hostile dataset name");
        assert_eq!(dataset.code(), Code::InvalidArgument, "{name}: {dataset:?}");
    }
    assert_eq!(
        files_below(server.data_dir())
            .into_iter()
            .filter(|f| !f.starts_with("registry.db"))
            .collect::<Vec<_>>(),
        files_before
            .into_iter()
            .filter(|f| !f.starts_with("registry.db"))
            .collect::<Vec<_>>(),
        "no rejected upload left a file"
    );

    // Free text with SQL metacharacters is stored verbatim.
    let description = "'); DROP TABLE model_versions; -- \" OR 1=1 --";
    let metadata = pb::RegisterModelMetadata {
        name: BUNDLED_MODEL.to_owned(),
        description: description.to_owned(),
        tags: [(
            "team'; --".to_owned(),
            "x\"); DELETE FROM aliases; --".to_owned(),
        )]
        .into(),
        ..Default::default()
    };
    let registered = register(&mut registry, metadata, &model_bytes)
        .await
        .expect("registers");
    assert_eq!(registered.version, 3, "no rejected write consumed a number");
    let stored = registry
        .get_model_version(pb::GetModelVersionRequest {
            model: Some(pb::ModelRef {
                name: BUNDLED_MODEL.to_owned(),
                version: 3,
                alias: String::new(),
            }),
        })
        .await
        .expect("stored")
        .into_inner();
    assert_eq!(stored.description, description);
    assert_eq!(
        stored.tags.get("team'; --").map(String::as_str),
        Some("x\"); DELETE FROM aliases; --")
    );
    let alive = probability(scoring.score(score(customer.clone())).await);
    assert!((0.0..=1.0).contains(&alive), "still serving");
}
