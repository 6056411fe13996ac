//! The KServe V2 / Open Inference Protocol over REST, as stock `tritonclient.http` speaks
//! it. Every route turns its request into the gRPC V2 message, calls the same
//! `GrpcInferenceService` method the gRPC port serves (validation, micro-batching
//! and all; tokens are checked by the access layer in front of these routes), and turns the answer back into JSON; a status becomes
//! `{"error": "..."}` with its HTTP code.
//!
//! The binary tensor data extension: when the `Inference-Header-Content-Length` header is
//! present, the body is that many bytes of JSON followed by the tensors whose JSON carries
//! `binary_data_size` instead of `data`, in input order. Outputs asked for with
//! `"binary_data": true` (or every output, with the request parameter
//! `binary_data_output`) come back the same way.

mod json_tensors;

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use churn_api::inference as pb;
use churn_api::inference::grpc_inference_service_server::GrpcInferenceService;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tonic::metadata::MetadataMap;

use super::KServeApi;
use crate::api::admission::AdmissionLayer;
use crate::api::status::http_status;
use crate::domain::error::ServiceError;
use json_tensors::{encode, nan_as_null};

/// The header that splits a binary-extension body into its JSON and its tensors.
const HEADER_LENGTH: &str = "inference-header-content-length";

/// What the V2 REST routes answer through: the gRPC V2 adapter, and the admission limits
/// the gRPC port applies, shared with it.
#[derive(Debug, Clone)]
pub struct RestState {
    pub api: KServeApi,
    pub admission: AdmissionLayer,
}

/// The V2 REST routes; bodies over `max_body_bytes` get 413.
pub fn routes(state: RestState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v2", get(server_metadata))
        .route("/v2/health/live", get(server_live))
        .route("/v2/health/ready", get(server_ready))
        .route("/v2/models/{name}", get(model_metadata))
        .route("/v2/models/{name}/versions/{version}", get(model_metadata))
        .route("/v2/models/{name}/ready", get(model_ready))
        .route(
            "/v2/models/{name}/versions/{version}/ready",
            get(model_ready),
        )
        .route("/v2/models/{name}/infer", post(infer))
        .route("/v2/models/{name}/versions/{version}/infer", post(infer))
        .route("/v2/repository/index", post(repository_index))
        .route("/v2/{*rest}", any(unknown_endpoint))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(state)
}

/// A model named in the path, with its version when the path has one.
#[derive(Debug, Deserialize)]
struct ModelPath {
    name: String,
    #[serde(default)]
    version: String,
}

/// A failed V2 REST call: its HTTP status and the message of `{"error": ...}`.
#[derive(Debug)]
struct RestError {
    status: StatusCode,
    message: String,
}

impl RestError {
    fn bad_request(message: String) -> RestError {
        RestError {
            status: StatusCode::BAD_REQUEST,
            message,
        }
    }
}

impl From<tonic::Status> for RestError {
    fn from(status: tonic::Status) -> RestError {
        let code = http_status(status.code());
        RestError {
            status: code,
            message: status.message().to_owned(),
        }
    }
}

/// A request the access layer refused, as `{"error": ...}` with 401 or 403.
pub fn refusal(_path: &str, refusal: ServiceError) -> Response {
    RestError::from(tonic::Status::from(refusal)).into_response()
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        (self.status, json_body(&json!({ "error": self.message }))).into_response()
    }
}

type RestResult = Result<Response, RestError>;

fn json_body(value: &impl Serialize) -> ([(header::HeaderName, HeaderValue); 1], Vec<u8>) {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// `message` as a gRPC request carrying the HTTP headers, so that the handlers read the
/// same metadata (the audit actor) as on the gRPC port.
fn grpc_request<T>(headers: &HeaderMap, message: T) -> tonic::Request<T> {
    tonic::Request::from_parts(
        MetadataMap::from_headers(headers.clone()),
        Default::default(),
        message,
    )
}

/// 200 when `true`, else 400 with `why`: the protocol answers readiness with the status.
fn boolean(value: bool, why: impl FnOnce() -> String) -> RestResult {
    if value {
        Ok(StatusCode::OK.into_response())
    } else {
        Err(RestError::bad_request(why()))
    }
}

async fn unknown_endpoint(uri: axum::http::Uri) -> RestError {
    RestError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "{} is not a V2 endpoint; see /v2, /v2/health/live|ready, /v2/models/NAME[/versions/VERSION][/ready|/infer]",
            uri.path()
        ),
    }
}

async fn server_live(
    State(RestState { api, .. }): State<RestState>,
    headers: HeaderMap,
) -> RestResult {
    let live = api
        .server_live(grpc_request(&headers, pb::ServerLiveRequest {}))
        .await?;
    boolean(live.into_inner().live, || {
        "the server is not live".to_owned()
    })
}

async fn server_ready(
    State(RestState { api, .. }): State<RestState>,
    headers: HeaderMap,
) -> RestResult {
    let ready = api
        .server_ready(grpc_request(&headers, pb::ServerReadyRequest {}))
        .await?;
    boolean(ready.into_inner().ready, || {
        "the default model is not ready".to_owned()
    })
}

async fn server_metadata(
    State(RestState { api, .. }): State<RestState>,
    headers: HeaderMap,
) -> RestResult {
    let metadata = api
        .server_metadata(grpc_request(&headers, pb::ServerMetadataRequest {}))
        .await?
        .into_inner();
    Ok(json_body(&json!({
        "name": metadata.name,
        "version": metadata.version,
        "extensions": metadata.extensions,
    }))
    .into_response())
}

async fn model_ready(
    State(RestState { api, .. }): State<RestState>,
    Path(model): Path<ModelPath>,
    headers: HeaderMap,
) -> RestResult {
    let request = pb::ModelReadyRequest {
        name: model.name.clone(),
        version: model.version.clone(),
    };
    let ready = api.model_ready(grpc_request(&headers, request)).await?;
    boolean(ready.into_inner().ready, || {
        format!(
            "model `{}` version {:?} is not ready (unknown, archived, or it cannot load)",
            model.name, model.version
        )
    })
}

async fn model_metadata(
    State(RestState { api, .. }): State<RestState>,
    Path(model): Path<ModelPath>,
    headers: HeaderMap,
) -> RestResult {
    let request = pb::ModelMetadataRequest {
        name: model.name,
        version: model.version,
    };
    let metadata = api
        .model_metadata(grpc_request(&headers, request))
        .await?
        .into_inner();
    let tensors = |tensors: &[pb::model_metadata_response::TensorMetadata]| -> Vec<Value> {
        tensors
            .iter()
            .map(|t| json!({ "name": t.name, "datatype": t.datatype, "shape": t.shape }))
            .collect()
    };
    Ok(json_body(&json!({
        "name": metadata.name,
        "versions": metadata.versions,
        "platform": metadata.platform,
        "inputs": tensors(&metadata.inputs),
        "outputs": tensors(&metadata.outputs),
    }))
    .into_response())
}

#[derive(Debug, Default, Deserialize)]
struct IndexRequest {
    #[serde(default)]
    ready: bool,
}

async fn repository_index(
    State(RestState { api, .. }): State<RestState>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    let request: IndexRequest = if body.is_empty() {
        IndexRequest::default()
    } else {
        parse_json(&body)?
    };
    let index = api
        .repository_index(grpc_request(
            &headers,
            pb::RepositoryIndexRequest {
                repository_name: String::new(),
                ready: request.ready,
            },
        ))
        .await?
        .into_inner();
    let models: Vec<Value> = index
        .models
        .iter()
        .map(|m| json!({ "name": m.name, "version": m.version, "state": m.state, "reason": m.reason }))
        .collect();
    Ok(json_body(&models).into_response())
}

/// A V2 inference request as JSON.
#[derive(Debug, Deserialize)]
struct InferRequest {
    #[serde(default)]
    id: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    inputs: Vec<InputTensor>,
    #[serde(default)]
    outputs: Vec<RequestedOutput>,
}

#[derive(Debug, Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Map<String, Value>,
    data: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Map<String, Value>,
}

fn parse_json<T: serde::de::DeserializeOwned>(json: &[u8]) -> Result<T, RestError> {
    serde_json::from_slice(json).map_err(|e| {
        RestError::bad_request(format!(
            "the request body is not a V2 request: {e} (see the Open Inference Protocol)"
        ))
    })
}

async fn infer(
    State(RestState { api, admission }): State<RestState>,
    Path(model): Path<ModelPath>,
    headers: HeaderMap,
    body: Bytes,
) -> RestResult {
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return Err(RestError::bad_request(format!(
            "Content-Encoding {encoding:?} is not supported; send the body uncompressed"
        )));
    }
    let (json, binary) = split_body(&headers, &body)?;
    let request: InferRequest = parse_json(&nan_as_null(json))?;
    let binary_outputs = binary_outputs(&request);
    let grpc = grpc_infer_request(model, request, binary)?;
    let response = admission
        .admit(api.model_infer(grpc_request(&headers, grpc)))
        .await
        .map_err(|message| RestError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message,
        })??
        .into_inner();
    Ok(infer_response(response, &binary_outputs))
}

/// The body's JSON and the binary tensors after it.
fn split_body<'a>(headers: &HeaderMap, body: &'a Bytes) -> Result<(&'a [u8], &'a [u8]), RestError> {
    let Some(length) = headers.get(HEADER_LENGTH) else {
        return Ok((body, &[]));
    };
    let length = length
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .filter(|&length| length <= body.len())
        .ok_or_else(|| {
            RestError::bad_request(format!(
                "{HEADER_LENGTH} is {length:?}; expected the JSON header's length in bytes, at most the body's {}",
                body.len()
            ))
        })?;
    Ok(body.split_at(length))
}

fn flag(parameters: &Map<String, Value>, name: &str) -> bool {
    parameters.get(name).and_then(Value::as_bool) == Some(true)
}

/// The names of the outputs to send as binary data.
fn binary_outputs(request: &InferRequest) -> Vec<String> {
    if request.outputs.is_empty() {
        return if flag(&request.parameters, "binary_data_output") {
            vec![super::tensors::PROBABILITY_OUTPUT.to_owned()]
        } else {
            Vec::new()
        };
    }
    let all = flag(&request.parameters, "binary_data_output");
    request
        .outputs
        .iter()
        .filter(|o| match o.parameters.get("binary_data") {
            Some(value) => value.as_bool() == Some(true),
            None => all,
        })
        .map(|o| o.name.clone())
        .collect()
}

/// The gRPC V2 request for a REST one: every input as raw little-endian bytes, taken from
/// the binary section or encoded from its JSON `data`.
fn grpc_infer_request(
    model: ModelPath,
    request: InferRequest,
    mut binary: &[u8],
) -> Result<pb::ModelInferRequest, RestError> {
    let mut inputs = Vec::with_capacity(request.inputs.len());
    let mut raw = Vec::with_capacity(request.inputs.len());
    for input in request.inputs {
        let invalid =
            |message: String| RestError::bad_request(format!("input `{}`: {message}", input.name));
        let bytes = match (input.parameters.get("binary_data_size"), &input.data) {
            (Some(size), _) => {
                let size = size
                    .as_u64()
                    .and_then(|size| usize::try_from(size).ok())
                    .filter(|&size| size <= binary.len())
                    .ok_or_else(|| {
                        invalid(format!(
                            "binary_data_size is {size}; expected a byte count within the {} bytes of binary data left",
                            binary.len()
                        ))
                    })?;
                let (bytes, rest) = binary.split_at(size);
                binary = rest;
                bytes.to_vec()
            }
            (None, Some(data)) => encode(&input.datatype, data).map_err(invalid)?,
            (None, None) => {
                return Err(invalid(
                    "has neither `data` nor a `binary_data_size` parameter".to_owned(),
                ));
            }
        };
        raw.push(bytes);
        inputs.push(pb::model_infer_request::InferInputTensor {
            name: input.name,
            datatype: input.datatype,
            shape: input.shape,
            parameters: HashMap::new(),
            contents: None,
        });
    }
    if !binary.is_empty() {
        return Err(RestError::bad_request(format!(
            "{} bytes of binary data are left after the inputs that declare binary_data_size",
            binary.len()
        )));
    }
    Ok(pb::ModelInferRequest {
        model_name: model.name,
        model_version: model.version,
        id: request.id,
        parameters: HashMap::new(),
        inputs,
        outputs: request
            .outputs
            .into_iter()
            .map(|o| pb::model_infer_request::InferRequestedOutputTensor {
                name: o.name,
                parameters: HashMap::new(),
            })
            .collect(),
        raw_input_contents: raw,
    })
}

/// The JSON answer, with the outputs named in `binary_outputs` after it as binary data.
fn infer_response(response: pb::ModelInferResponse, binary_outputs: &[String]) -> Response {
    let mut binary = Vec::new();
    let outputs: Vec<Value> = response
        .outputs
        .iter()
        .enumerate()
        .map(|(index, output)| {
            let values = output_values(&response, index);
            let mut tensor = json!({
                "name": output.name,
                "datatype": output.datatype,
                "shape": output.shape,
            });
            if binary_outputs.contains(&output.name) {
                let start = binary.len();
                binary.extend(values.iter().flat_map(|v| v.to_le_bytes()));
                tensor["parameters"] = json!({ "binary_data_size": binary.len() - start });
            } else {
                tensor["data"] = json!(values);
            }
            tensor
        })
        .collect();
    let mut header = json!({
        "model_name": response.model_name,
        "model_version": response.model_version,
        "id": response.id,
        "outputs": outputs,
    });
    if let Some(pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(versions)),
    }) = response.parameters.get("served_versions")
    {
        header["parameters"] = json!({ "served_versions": versions });
    }
    let (content_type, mut body) = json_body(&header);
    if binary.is_empty() {
        return (content_type, body).into_response();
    }
    let header_length = body.len();
    body.extend(binary);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            ),
            (
                header::HeaderName::from_static(HEADER_LENGTH),
                HeaderValue::from(header_length),
            ),
        ],
        body,
    )
        .into_response()
}

/// The FP64 elements of output `index`, raw or typed.
fn output_values(response: &pb::ModelInferResponse, index: usize) -> Vec<f64> {
    match response.raw_output_contents.get(index) {
        Some(raw) => raw
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect(),
        None => response.outputs[index]
            .contents
            .as_ref()
            .map(|c| c.fp64_contents.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_data_encodes_as_the_raw_bytes_of_its_datatype() {
        let fp64 = encode("FP64", &json!([[1.5], [null]])).unwrap();
        assert_eq!(&fp64[..8], &1.5f64.to_le_bytes());
        assert!(f64::from_le_bytes(fp64[8..].try_into().unwrap()).is_nan());
        assert_eq!(
            encode("BYTES", &json!(["ab", ""])).unwrap(),
            [2, 0, 0, 0, b'a', b'b', 0, 0, 0, 0]
        );
        assert_eq!(encode("BOOL", &json!([true, false])).unwrap(), [1, 0]);
        assert_eq!(
            encode("INT32", &json!([-2])).unwrap(),
            (-2i32).to_le_bytes()
        );
        let wrong = encode("FP32", &json!([1, "x"])).unwrap_err();
        assert!(
            wrong.contains("element 1") && wrong.contains("FP32"),
            "{wrong}"
        );
        assert!(encode("INT32", &json!([1u64 << 40])).is_err());
    }

    #[test]
    fn a_bare_nan_is_read_as_null_but_not_inside_strings() {
        let json = br#"{"data": [1.0, NaN], "id": "NaN \" NaN"}"#;
        let read: Value = serde_json::from_slice(&nan_as_null(json)).unwrap();
        assert_eq!(read["data"], json!([1.0, null]));
        assert_eq!(read["id"], "NaN \" NaN");
    }

    #[test]
    fn binary_outputs_follow_the_per_output_flag_then_the_request_parameter() {
        let request = |json: Value| -> InferRequest { serde_json::from_value(json).unwrap() };
        let all = request(json!({"inputs": [], "parameters": {"binary_data_output": true}}));
        assert_eq!(binary_outputs(&all), ["churn_probability"]);
        let none = request(json!({"inputs": []}));
        assert!(binary_outputs(&none).is_empty());
        let named = request(json!({
            "inputs": [],
            "parameters": {"binary_data_output": true},
            "outputs": [{"name": "churn_probability", "parameters": {"binary_data": false}}]
        }));
        assert!(binary_outputs(&named).is_empty());
    }
}
