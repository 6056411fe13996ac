//! KServe V2 tensors to customers and probabilities back: typed `contents` or
//! little-endian `raw_input_contents` (BYTES as 4-byte length-prefixed elements), one
//! `[N,1]` input per raw feature or one `[N,F]` input for a dense model.

use crate::domain::{Customer, FeatureValue, Schema, TensorType};
use churn_api::inference as pb;

use crate::domain::error::ServiceError;
use crate::domain::records::versions::IndexedVersion;
use crate::domain::serving::scoring::Inferred;
use crate::domain::serving::served::ServedModel;

/// Refuses a request for any output but the probability.
pub fn check_outputs(request: &pb::ModelInferRequest) -> Result<(), ServiceError> {
    match request
        .outputs
        .iter()
        .find(|o| o.name != PROBABILITY_OUTPUT)
    {
        Some(other) => Err(ServiceError::InvalidRequest(format!(
            "output `{}` does not exist; the only output is `{PROBABILITY_OUTPUT}`",
            other.name
        ))),
        None => Ok(()),
    }
}

/// The answer to `request`: raw bytes when the inputs came raw or the client asked for
/// binary outputs, typed contents otherwise.
pub fn infer_response(
    request: pb::ModelInferRequest,
    inferred: Inferred,
) -> pb::ModelInferResponse {
    let wants_binary = request.outputs.iter().any(|o| {
        matches!(
            o.parameters
                .get("binary_data")
                .and_then(|p| p.parameter_choice.as_ref()),
            Some(pb::infer_parameter::ParameterChoice::BoolParam(true))
        )
    });
    let raw = !request.raw_input_contents.is_empty() || wants_binary;
    let (output, bytes) = probability_output(&inferred.probabilities, raw);
    let (model_version, parameters) = served_versions(&inferred);
    pb::ModelInferResponse {
        model_name: inferred.served.name.clone(),
        model_version,
        id: request.id,
        parameters,
        outputs: vec![output],
        raw_output_contents: bytes.into_iter().collect(),
    }
}

/// The response's version and parameters. Through a traffic split each row is answered
/// by its customer's arm: the parameter `served_versions` lists them, row by row, and
/// `model_version` is that version when every row had the same one (else empty).
fn served_versions(
    inferred: &Inferred,
) -> (
    String,
    std::collections::HashMap<String, pb::InferParameter>,
) {
    let Some(versions) = &inferred.row_versions else {
        return (inferred.served.version.to_string(), Default::default());
    };
    let same = versions
        .first()
        .filter(|first| versions.iter().all(|v| v == *first));
    let listed = versions
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let parameter = pb::InferParameter {
        parameter_choice: Some(pb::infer_parameter::ParameterChoice::StringParam(listed)),
    };
    (
        same.map(u32::to_string).unwrap_or_default(),
        [("served_versions".to_owned(), parameter)].into(),
    )
}

/// A version's inputs as V2 tensors (one `[-1,1]` per raw feature, or the dense `[-1,F]`
/// input), its one output, and the model's listed versions.
pub fn model_metadata(served: &ServedModel, versions: &[u32]) -> pb::ModelMetadataResponse {
    let schema = served.model.schema();
    let tensor =
        |name: &str, datatype: &str, shape: Vec<i64>| pb::model_metadata_response::TensorMetadata {
            name: name.to_owned(),
            datatype: datatype.to_owned(),
            shape,
        };
    let inputs = match schema.dense_input() {
        Some(name) => {
            let element = schema
                .features
                .first()
                .map_or("FP32", |f| datatype(f.tensor_type));
            vec![tensor(
                name,
                element,
                vec![-1, schema.features.len() as i64],
            )]
        }
        None => schema
            .features
            .iter()
            .map(|f| tensor(&f.name, datatype(f.tensor_type), vec![-1, 1]))
            .collect(),
    };
    pb::ModelMetadataResponse {
        name: served.name.clone(),
        versions: versions.iter().map(u32::to_string).collect(),
        platform: "onnxruntime_onnx".to_owned(),
        inputs,
        outputs: vec![tensor(PROBABILITY_OUTPUT, "FP64", vec![-1])],
    }
}

/// The repository as V2 lists it: every unarchived version, `READY` when it is in
/// memory; only those with `only_ready`.
pub fn repository_index(
    versions: Vec<IndexedVersion>,
    only_ready: bool,
) -> pb::RepositoryIndexResponse {
    let models = versions
        .into_iter()
        .filter(|v| v.loaded || !only_ready)
        .map(|v| pb::repository_index_response::ModelIndex {
            name: v.name,
            version: v.version.to_string(),
            state: if v.loaded { "READY" } else { "UNAVAILABLE" }.to_owned(),
            reason: if v.loaded {
                String::new()
            } else {
                "not loaded; it loads on first use".to_owned()
            },
        })
        .collect();
    pb::RepositoryIndexResponse { models }
}

/// The one output every model has.
pub const PROBABILITY_OUTPUT: &str = "churn_probability";

/// A tensor's elements, whatever their wire type.
enum Elements {
    Numbers(Vec<f64>),
    Texts(Vec<String>),
    Flags(Vec<bool>),
}

impl Elements {
    fn len(&self) -> usize {
        match self {
            Elements::Numbers(v) => v.len(),
            Elements::Texts(v) => v.len(),
            Elements::Flags(v) => v.len(),
        }
    }

    fn value(&self, index: usize) -> FeatureValue {
        match self {
            Elements::Numbers(v) => FeatureValue::Number(v[index]),
            Elements::Texts(v) => FeatureValue::Text(v[index].clone()),
            Elements::Flags(v) => FeatureValue::Flag(v[index]),
        }
    }
}

/// The V2 datatype a feature's graph input takes.
fn datatype(tensor_type: TensorType) -> &'static str {
    match tensor_type {
        TensorType::F32 => "FP32",
        TensorType::F64 => "FP64",
        TensorType::I64 => "INT64",
        TensorType::Bool => "BOOL",
        TensorType::Text => "BYTES",
    }
}

/// The optional BYTES input `[N]` or `[N, 1]` with each row's customer id: rows with one
/// are kept in the prediction log.
const CUSTOMER_ID_INPUT: &str = "customer_id";

/// The request's customers, by the model's raw feature names, with the ids of the
/// `customer_id` input (empty without it).
pub fn customers(
    schema: &Schema,
    request: &pb::ModelInferRequest,
) -> Result<Vec<Customer>, ServiceError> {
    let raw = &request.raw_input_contents;
    if request.inputs.is_empty() {
        return Err(invalid(
            "inputs: none were sent; see ModelMetadata for this model's inputs".to_owned(),
        ));
    }
    if !raw.is_empty() && raw.len() != request.inputs.len() {
        return Err(invalid(format!(
            "raw_input_contents has {} entries for {} inputs; send one per input or none",
            raw.len(),
            request.inputs.len()
        )));
    }
    let decoded = request
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| {
            let elements = elements(input, raw.get(i).map(Vec::as_slice))
                .map_err(|message| invalid(format!("input `{}`: {message}", input.name)))?;
            // Checked: a shape comes from the client and its product can overflow.
            let expected = input.shape.iter().try_fold(1usize, |count, &dimension| {
                usize::try_from(dimension)
                    .ok()
                    .and_then(|dimension| count.checked_mul(dimension))
            });
            if expected != Some(elements.len()) {
                let holds = expected.map_or_else(
                    || "is negative or too large".to_owned(),
                    |n| format!("holds {n} elements"),
                );
                return Err(invalid(format!(
                    "input `{}`: shape {:?} {holds} but {} were sent",
                    input.name,
                    input.shape,
                    elements.len()
                )));
            }
            Ok((input, elements))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // An input naming each row's customer, unless the model has a feature of that name.
    let (ids, features): (Vec<_>, Vec<_>) = decoded.into_iter().partition(|(input, _)| {
        input.name == CUSTOMER_ID_INPUT && schema.feature(CUSTOMER_ID_INPUT).is_none()
    });
    let mut customers = match schema.dense_input() {
        Some(name) => dense_customers(schema, name, &features),
        None => per_feature_customers(schema, &features),
    }?;
    match ids.first() {
        None => {}
        Some((_, Elements::Texts(ids))) if ids.len() == customers.len() => {
            for (customer, id) in customers.iter_mut().zip(ids) {
                customer.id.clone_from(id);
            }
        }
        Some((_, ids)) => {
            return Err(invalid(format!(
                "input `{CUSTOMER_ID_INPUT}`: expected BYTES, one per row ({}), got {} elements",
                customers.len(),
                ids.len()
            )));
        }
    }
    Ok(customers)
}

fn per_feature_customers(
    schema: &Schema,
    decoded: &[(&pb::model_infer_request::InferInputTensor, Elements)],
) -> Result<Vec<Customer>, ServiceError> {
    let rows = decoded
        .first()
        .map_or(0, |(input, _)| input.shape.first().copied().unwrap_or(0)) as usize;
    for (input, _) in decoded {
        let shape_ok = matches!(input.shape.as_slice(), [n] | [n, 1] if *n as usize == rows);
        if !shape_ok {
            return Err(invalid(format!(
                "input `{}`: shape {:?}; expected [{rows}, 1] like the first input (one column per raw feature)",
                input.name, input.shape
            )));
        }
        if schema.feature(&input.name).is_none() {
            return Err(invalid(format!(
                "input `{}` is not a feature of this model; its inputs are {}",
                input.name,
                schema
                    .features
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    }
    Ok((0..rows)
        .map(|row| Customer {
            id: String::new(),
            features: decoded
                .iter()
                .map(|(input, elements)| (input.name.clone(), elements.value(row)))
                .collect(),
        })
        .collect())
}

fn dense_customers(
    schema: &Schema,
    input_name: &str,
    decoded: &[(&pb::model_infer_request::InferInputTensor, Elements)],
) -> Result<Vec<Customer>, ServiceError> {
    let width = schema.features.len();
    let [(input, Elements::Numbers(values))] = decoded else {
        return Err(invalid(format!(
            "this model takes one numeric input `{input_name}` shaped [N, {width}]"
        )));
    };
    let rows = match input.shape.as_slice() {
        [n, w] if *w as usize == width => *n as usize,
        other => {
            return Err(invalid(format!(
                "input `{}`: shape {other:?}; expected [N, {width}]",
                input.name
            )));
        }
    };
    (0..rows)
        .map(|row| {
            let features = schema
                .features
                .iter()
                .enumerate()
                .map(|(column, feature)| {
                    let value = values[row * width + column];
                    let value = match &feature.categories {
                        // A coded column carries the index of its category.
                        Some(categories) => {
                            let code = (value.fract() == 0.0 && value >= 0.0)
                                .then_some(value as usize)
                                .and_then(|code| categories.values.get(code));
                            match code {
                                Some(text) => FeatureValue::Text(text.clone()),
                                None => {
                                    return Err(invalid(format!(
                                        "row {row}: column {column} (`{}`) is {value}; expected a category code 0..{}",
                                        feature.name,
                                        categories.values.len() - 1
                                    )));
                                }
                            }
                        }
                        None if value.is_nan() => FeatureValue::Missing,
                        None => FeatureValue::Number(value),
                    };
                    Ok((feature.name.clone(), value))
                })
                .collect::<Result<_, _>>()?;
            Ok(Customer {
                id: String::new(),
                features,
            })
        })
        .collect()
}

fn elements(
    input: &pb::model_infer_request::InferInputTensor,
    raw: Option<&[u8]>,
) -> Result<Elements, String> {
    let contents = input.contents.clone().unwrap_or_default();
    let fixed = |width: usize| -> Result<Vec<&[u8]>, String> {
        let raw = raw.unwrap_or_default();
        if !raw.len().is_multiple_of(width) {
            return Err(format!(
                "{} raw bytes are not a whole number of {width}-byte {} elements",
                raw.len(),
                input.datatype
            ));
        }
        Ok(raw.chunks_exact(width).collect())
    };
    let bytes = |chunk: &[u8]| -> [u8; 8] {
        let mut out = [0u8; 8];
        out[..chunk.len()].copy_from_slice(chunk);
        out
    };
    Ok(match (input.datatype.as_str(), raw) {
        ("FP64", None) => Elements::Numbers(contents.fp64_contents),
        ("FP64", Some(_)) => Elements::Numbers(
            fixed(8)?
                .iter()
                .map(|c| f64::from_le_bytes(bytes(c)))
                .collect(),
        ),
        ("FP32", None) => Elements::Numbers(
            contents
                .fp32_contents
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        ),
        ("FP32", Some(_)) => Elements::Numbers(
            fixed(4)?
                .iter()
                .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        ("INT64", None) => {
            Elements::Numbers(contents.int64_contents.iter().map(|&v| v as f64).collect())
        }
        ("INT64", Some(_)) => Elements::Numbers(
            fixed(8)?
                .iter()
                .map(|c| i64::from_le_bytes(bytes(c)) as f64)
                .collect(),
        ),
        ("INT32", None) => Elements::Numbers(
            contents
                .int_contents
                .iter()
                .map(|&v| f64::from(v))
                .collect(),
        ),
        ("INT32", Some(_)) => Elements::Numbers(
            fixed(4)?
                .iter()
                .map(|c| f64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
                .collect(),
        ),
        ("BOOL", None) => Elements::Flags(contents.bool_contents),
        ("BOOL", Some(_)) => Elements::Flags(fixed(1)?.iter().map(|c| c[0] != 0).collect()),
        ("BYTES", None) => Elements::Texts(
            contents
                .bytes_contents
                .into_iter()
                .map(|b| {
                    String::from_utf8(b).map_err(|_| "a BYTES element is not UTF-8 text".to_owned())
                })
                .collect::<Result<_, _>>()?,
        ),
        ("BYTES", Some(raw)) => Elements::Texts(length_prefixed(raw)?),
        (other, _) => {
            return Err(format!(
                "datatype {other:?} is not accepted; expected BYTES, FP32, FP64, INT32, INT64 or BOOL"
            ));
        }
    })
}

/// BYTES elements in raw form: each a 4-byte little-endian length, then that many bytes.
fn length_prefixed(mut raw: &[u8]) -> Result<Vec<String>, String> {
    let mut texts = Vec::new();
    while !raw.is_empty() {
        let Some((length, rest)) = raw.split_first_chunk::<4>() else {
            return Err("raw BYTES end inside an element's 4-byte length".to_owned());
        };
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            return Err(format!(
                "a raw BYTES element claims {length} bytes but {} remain",
                rest.len()
            ));
        }
        let (text, rest) = rest.split_at(length);
        texts.push(
            String::from_utf8(text.to_vec())
                .map_err(|_| "a BYTES element is not UTF-8 text".to_owned())?,
        );
        raw = rest;
    }
    Ok(texts)
}

/// The probabilities as the `churn_probability` output, raw or typed.
pub fn probability_output(
    probabilities: &[f64],
    raw: bool,
) -> (pb::model_infer_response::InferOutputTensor, Option<Vec<u8>>) {
    let tensor = pb::model_infer_response::InferOutputTensor {
        name: PROBABILITY_OUTPUT.to_owned(),
        datatype: "FP64".to_owned(),
        shape: vec![probabilities.len() as i64],
        parameters: Default::default(),
        contents: (!raw).then(|| pb::InferTensorContents {
            fp64_contents: probabilities.to_vec(),
            ..Default::default()
        }),
    };
    let bytes = raw.then(|| probabilities.iter().flat_map(|p| p.to_le_bytes()).collect());
    (tensor, bytes)
}

fn invalid(message: String) -> ServiceError {
    ServiceError::InvalidRequest(message)
}
