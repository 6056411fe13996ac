//! The KServe V2 protocol and the health service through the real server, with the
//! generated clients: metadata by raw feature, ModelInfer with typed contents equal to
//! Score, refusals with their codes, repository calls, health statuses.

use churn_api::inference as kserve;
use churn_api::inference::grpc_inference_service_client::GrpcInferenceServiceClient;
use churn_api::v1 as pb;
use tests::{BUNDLED_MODEL, TestServer, fixture};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_infer_with_typed_contents_equals_score() {
    let server = TestServer::start().await;
    let mut client = GrpcInferenceServiceClient::new(server.channel().await);
    let metadata = client
        .model_metadata(kserve::ModelMetadataRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: String::new(),
        })
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(metadata.versions, ["1", "2"]);
    assert_eq!(metadata.inputs.len(), 19);
    let datatype = |name: &str| {
        metadata
            .inputs
            .iter()
            .find(|t| t.name == name)
            .expect(name)
            .datatype
            .clone()
    };
    assert_eq!(
        (
            datatype("contract"),
            datatype("tenure"),
            datatype("totalcharges")
        ),
        ("BYTES".into(), "INT64".into(), "FP32".into())
    );
    let dense = client
        .model_metadata(kserve::ModelMetadataRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: "2".to_owned(),
        })
        .await
        .expect("metadata")
        .into_inner();
    assert_eq!(
        (dense.inputs.len(), dense.inputs[0].shape.clone()),
        (1, vec![-1, 19])
    );

    let customers = fixture("models/fixtures/telco-logreg.json", "customers");
    let rows = &customers[..30];
    let inputs = tests::kserve_inputs(&metadata, rows);
    let request = kserve::ModelInferRequest {
        model_name: BUNDLED_MODEL.to_owned(),
        model_version: String::new(),
        id: "request-7".to_owned(),
        inputs: inputs.clone(),
        ..Default::default()
    };
    let response = client
        .model_infer(request.clone())
        .await
        .expect("infers")
        .into_inner();
    assert_eq!(
        (response.id.as_str(), response.model_version.as_str()),
        ("request-7", "1")
    );
    assert!(
        response.raw_output_contents.is_empty(),
        "typed in, typed out"
    );
    let probabilities = &response.outputs[0]
        .contents
        .as_ref()
        .expect("contents")
        .fp64_contents;
    let scored = server
        .scoring()
        .await
        .score_batch(pb::ScoreBatchRequest {
            model: None,
            customers: rows.iter().map(|c| c.to_proto()).collect(),
            top_reasons: 0,
            ..Default::default()
        })
        .await
        .expect("scores")
        .into_inner();
    for (result, probability) in scored.results.iter().zip(probabilities) {
        let Some(pb::row_result::Outcome::Prediction(p)) = &result.outcome else {
            panic!("scored")
        };
        assert_eq!(
            p.churn_probability, *probability,
            "ModelInfer and ScoreBatch agree exactly"
        );
    }

    let refusals = [
        (
            {
                let mut r = request.clone();
                r.model_version = "two".into();
                r
            },
            "model version \"two\"",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs.clear();
                r
            },
            "inputs: none were sent",
        ),
        (
            {
                let mut r = request.clone();
                r.outputs
                    .push(kserve::model_infer_request::InferRequestedOutputTensor {
                        name: "label".into(),
                        parameters: Default::default(),
                    });
                r
            },
            "output `label` does not exist",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs[0].shape = vec![29, 1];
                r
            },
            "holds 29 elements but 30 were sent",
        ),
        (
            // Found by the kserve_infer fuzz target: the product of the dimensions overflowed.
            {
                let mut r = request.clone();
                r.inputs[0].shape = vec![i64::MAX, 4];
                r
            },
            "shape [9223372036854775807, 4] is negative or too large but 30 were sent",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs[0].shape = vec![-30, -1];
                r
            },
            "shape [-30, -1] is negative or too large",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs[0].name = "colour".into();
                r
            },
            "input `colour` is not a feature",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs.retain(|i| i.name != "contract");
                r
            },
            "row 0: feature `contract`: is required but absent",
        ),
        (
            {
                let mut r = request.clone();
                r.inputs[0].datatype = "FP16".into();
                r
            },
            "datatype \"FP16\" is not accepted",
        ),
    ];
    for (bad, message) in refusals {
        let status = client.model_infer(bad).await.expect_err(message);
        assert_eq!(status.code(), Code::InvalidArgument, "{}", status.message());
        assert!(status.message().contains(message), "{}", status.message());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_the_repository() {
    let server = TestServer::start().await;
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    for service in [
        "",
        "churn.v1.ScoringService",
        "inference.GRPCInferenceService",
    ] {
        let status = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .expect("health")
            .into_inner()
            .status();
        assert_eq!(status, ServingStatus::Serving, "{service:?}");
    }
    let unknown = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "nope".to_owned(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), Code::NotFound);

    let mut client = GrpcInferenceServiceClient::new(channel);
    assert!(
        client
            .server_live(kserve::ServerLiveRequest {})
            .await
            .expect("live")
            .into_inner()
            .live
    );
    assert!(
        client
            .server_ready(kserve::ServerReadyRequest {})
            .await
            .expect("ready")
            .into_inner()
            .ready
    );
    let ready = |name: &str, version: &str| kserve::ModelReadyRequest {
        name: name.to_owned(),
        version: version.to_owned(),
    };
    assert!(
        client
            .model_ready(ready(BUNDLED_MODEL, "2"))
            .await
            .expect("ready")
            .into_inner()
            .ready
    );
    assert!(
        !client
            .model_ready(ready("nope", ""))
            .await
            .expect("answers")
            .into_inner()
            .ready
    );
    let index = client
        .repository_index(kserve::RepositoryIndexRequest {
            repository_name: String::new(),
            ready: false,
        })
        .await
        .expect("index")
        .into_inner()
        .models;
    assert_eq!(
        index
            .iter()
            .map(|m| (m.version.as_str(), m.state.as_str()))
            .collect::<Vec<_>>(),
        [("1", "READY"), ("2", "READY")]
    );
    client
        .repository_model_unload(kserve::RepositoryModelUnloadRequest {
            model_name: BUNDLED_MODEL.to_owned(),
            ..Default::default()
        })
        .await
        .expect("unloads");
    assert!(
        client
            .model_ready(ready(BUNDLED_MODEL, ""))
            .await
            .expect("ready")
            .into_inner()
            .ready,
        "aliased versions keep serving"
    );
    let missing = client
        .repository_model_unload(kserve::RepositoryModelUnloadRequest {
            model_name: "nope".to_owned(),
            ..Default::default()
        })
        .await
        .expect_err("unknown model");
    assert_eq!(missing.code(), Code::NotFound);
}
