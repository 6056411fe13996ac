//! The KServe V2 REST API on the HTTP port of a real server: a JSON `infer` gives the
//! probabilities `Score` gives; the read token guards it (not the probes); and every kind of
//! bad request gets `{"error": ...}` with its 4xx status, never a 500. (Stock
//! `tritonclient.http`, binary tensors included, runs in tests/clients/kserve_check.py.)

use serde_json::{Value, json};
use tests::{FixtureValue, TestServer, fixture, http_get, http_request};

const MODEL_PATH: &str = "/v2/models/telco-churn/versions/1";

/// What is wrong, the path, the body, extra headers, the status expected and a word the
/// error must contain.
type BadRequest<'a> = (
    &'a str,
    String,
    Vec<u8>,
    &'a [(&'a str, &'a str)],
    &'a str,
    &'a str,
);

async fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (String, Value) {
    let (status, body) = http_request(port, "POST", path, headers, body).await;
    let body = serde_json::from_str(&body).unwrap_or_else(|_| json!({ "raw": body }));
    (status, body)
}

/// A JSON V2 request for the first `rows` fixture customers, typed by the model's metadata.
fn infer_request(metadata: &Value, rows: usize) -> Value {
    let customers = &fixture("models/fixtures/telco-logreg.json", "customers")[..rows];
    let inputs: Vec<Value> = metadata["inputs"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|input| {
            let name = input["name"].as_str().expect("name");
            let data: Vec<Value> = customers
                .iter()
                .map(|c| {
                    match &c
                        .features
                        .iter()
                        .find(|(f, _)| f == name)
                        .expect("feature")
                        .1
                    {
                        FixtureValue::Number(n) if input["datatype"] == "INT64" => json!(*n as i64),
                        FixtureValue::Number(n) => json!(n),
                        FixtureValue::Text(t) => json!(t),
                        FixtureValue::Missing => Value::Null,
                    }
                })
                .collect();
            json!({ "name": name, "datatype": input["datatype"], "shape": [rows, 1], "data": data })
        })
        .collect();
    json!({ "id": "rest-1", "inputs": inputs })
}

async fn metadata(port: u16, headers: &[(&str, &str)]) -> Value {
    let (status, body) = http_request(port, "GET", MODEL_PATH, headers, b"").await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    serde_json::from_str(&body).expect("JSON metadata")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_infer_equals_score_and_the_read_token_guards_everything_but_the_probes() {
    let (server, port) =
        TestServer::start_with_http(|config| config.read_token = Some("reader".into())).await;
    let bearer = [("authorization", "Bearer reader")];

    let (status, _) = http_get(port, "/v2/health/live").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    for path in ["/v2", MODEL_PATH, "/v2/health/ready"] {
        let (status, body) = http_get(port, path).await;
        assert_eq!(status, "HTTP/1.1 401 Unauthorized", "{path}: {body}");
        assert!(body.starts_with("{\"error\":"), "{path}: {body}");
    }
    let (status, _) = http_request(
        port,
        "GET",
        MODEL_PATH,
        &[("authorization", "Bearer wrong")],
        b"",
    )
    .await;
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    for probe in ["/healthz", "/readyz", "/metrics"] {
        assert_eq!(http_get(port, probe).await.0, "HTTP/1.1 200 OK", "{probe}");
    }

    let metadata = metadata(port, &bearer).await;
    assert_eq!(metadata["name"], "telco-churn");
    assert_eq!(metadata["outputs"][0]["name"], "churn_probability");
    let request = infer_request(&metadata, 20);
    let body = serde_json::to_vec(&request).expect("JSON");
    let (status, answer) = post(port, &format!("{MODEL_PATH}/infer"), &bearer, &body).await;
    assert_eq!(status, "HTTP/1.1 200 OK", "{answer}");
    assert_eq!(answer["id"], "rest-1");
    assert_eq!(answer["model_version"], "1");
    let probabilities = answer["outputs"][0]["data"].as_array().expect("data");
    // ONNX Runtime's float arithmetic may differ in the last bits with the batch's
    // composition, so the same rows go through ScoreBatch as one batch.
    let mut request = tonic::Request::new(churn_api::v1::ScoreBatchRequest {
        model: Some(churn_api::v1::ModelRef {
            name: "telco-churn".to_owned(),
            version: 1,
            alias: String::new(),
        }),
        customers: fixture("models/fixtures/telco-logreg.json", "customers")[..20]
            .iter()
            .map(|c| c.to_proto())
            .collect(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", "Bearer reader".parse().expect("header"));
    let scored = server
        .scoring()
        .await
        .score_batch(request)
        .await
        .expect("ScoreBatch")
        .into_inner();
    for (result, probability) in scored.results.iter().zip(probabilities) {
        let Some(churn_api::v1::row_result::Outcome::Prediction(expected)) = &result.outcome else {
            panic!("row {} was not scored", result.row);
        };
        assert_eq!(probability.as_f64(), Some(expected.churn_probability));
    }
    assert_eq!(probabilities.len(), 20);
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_an_error_body_with_a_4xx_status() {
    let (server, port) = TestServer::start_with_http(|config| {
        config.max_batch_rows = 5;
        config.max_message_bytes = 64 * 1024;
    })
    .await;
    let metadata = metadata(port, &[]).await;
    let infer = format!("{MODEL_PATH}/infer");
    let valid = infer_request(&metadata, 2);
    let with = |change: &dyn Fn(&mut Value)| {
        let mut request = valid.clone();
        change(&mut request);
        serde_json::to_vec(&request).expect("JSON")
    };
    let binary_header = [("inference-header-content-length", "99999")];
    let cases: Vec<BadRequest> = vec![
        (
            "not JSON",
            infer.clone(),
            b"{inputs".to_vec(),
            &[],
            "400 Bad Request",
            "not a V2 request",
        ),
        (
            "a number for a text input",
            infer.clone(),
            with(&|r| r["inputs"][0]["data"] = json!([1, 2])),
            &[],
            "400 Bad Request",
            "element 0",
        ),
        (
            "a wrong shape",
            infer.clone(),
            with(&|r| r["inputs"][0]["shape"] = json!([3, 1])),
            &[],
            "400 Bad Request",
            "shape",
        ),
        (
            "an unknown datatype",
            infer.clone(),
            with(&|r| r["inputs"][0]["datatype"] = json!("FP16")),
            &[],
            "400 Bad Request",
            "FP16",
        ),
        (
            "neither data nor binary",
            infer.clone(),
            with(&|r| {
                r["inputs"][0]
                    .as_object_mut()
                    .expect("object")
                    .remove("data");
            }),
            &[],
            "400 Bad Request",
            "binary_data_size",
        ),
        (
            "a header length past the body",
            infer.clone(),
            with(&|_| {}),
            &binary_header,
            "400 Bad Request",
            "inference-header-content-length",
        ),
        (
            "an unknown output",
            infer.clone(),
            with(&|r| r["outputs"] = json!([{ "name": "logits" }])),
            &[],
            "400 Bad Request",
            "logits",
        ),
        (
            "an unknown model",
            "/v2/models/no-such-model/infer".to_owned(),
            with(&|_| {}),
            &[],
            "404 Not Found",
            "no-such-model",
        ),
        (
            "a version that is not a number",
            "/v2/models/telco-churn/versions/one/infer".to_owned(),
            with(&|_| {}),
            &[],
            "400 Bad Request",
            "version",
        ),
        (
            "more rows than --max-batch-rows",
            infer.clone(),
            serde_json::to_vec(&infer_request(&metadata, 6)).expect("JSON"),
            &[],
            "429 Too Many Requests",
            "6",
        ),
        (
            "a compressed body",
            infer.clone(),
            with(&|_| {}),
            &[("content-encoding", "gzip")],
            "400 Bad Request",
            "Content-Encoding",
        ),
    ];
    for (case, path, body, headers, status, mentions) in cases {
        let (got, answer) = post(port, &path, headers, &body).await;
        assert_eq!(got, format!("HTTP/1.1 {status}"), "{case}: {answer}");
        let message = answer["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: no error in {answer}"));
        assert!(
            message.contains(mentions),
            "{case}: {message:?} does not mention {mentions:?}"
        );
    }
    let oversized = vec![b' '; 128 * 1024];
    let (status, _) = http_request(port, "POST", &infer, &[], &oversized).await;
    assert_eq!(status, "HTTP/1.1 413 Payload Too Large");
    let (status, _) = http_get(port, "/v2/models/no-such-model").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, _) = http_get(port, "/v2/models/no-such-model/ready").await;
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (status, body) = http_get(port, "/v2/models/telco-churn/config").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    assert!(body.contains("not a V2 endpoint"), "{body}");
    server.stop().await.expect("stops");
}
