//! A model's raw input schema: the features a caller sends, their kinds and categories,
//! and how each one reaches the graph (its own input tensor, or a column of a dense one).

use std::collections::HashMap;

use rustc_hash::FxHashMap;

use crate::error::EngineError;
use crate::graph::{ColumnCategories, GraphFacts, GraphInput, UnknownCategory};
use crate::onnx_proto::elem_type;

/// Metadata key holding a dense model's feature names, as a JSON array of strings.
pub const FEATURE_NAMES_KEY: &str = "churnserve.feature_names";
/// Metadata key holding a dense model's category lists, as a JSON object from feature
/// name to the array of categories; a category is fed as its index in that array.
pub const CATEGORIES_KEY: &str = "churnserve.categories";

/// What kind of value a caller sends for a feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    Number,
    Text,
    Bool,
}

/// Element type of a tensor the engine fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F64,
    I64,
    Bool,
    Text,
}

/// The categories of a text feature and how an unseen one is treated.
#[derive(Debug, Clone)]
pub struct Categories {
    pub values: Vec<String>,
    pub unknown: UnknownCategory,
    pub(crate) index: HashMap<String, usize>,
}

/// One raw feature.
#[derive(Debug, Clone)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
    /// Known categories of a text feature; `None` when the graph does not say.
    pub categories: Option<Categories>,
    /// Whether a missing value (fed as NaN) is something the graph handles.
    pub missing_allowed: bool,
    /// The element type the graph takes this feature as.
    pub tensor_type: TensorType,
}

/// How the features reach the graph.
#[derive(Debug, Clone)]
pub(crate) enum Layout {
    /// Feature `i` is graph input `i`, shaped `[N,1]` (or `[N]` when `rank` is 1).
    PerFeature {
        input_names: Vec<String>,
        ranks: Vec<usize>,
    },
    /// Every feature is one column of a single `[N,F]` tensor.
    Dense { input_name: String },
}

/// The input schema of a model.
#[derive(Debug, Clone)]
pub struct Schema {
    pub features: Vec<Feature>,
    pub(crate) layout: Layout,
    /// Feature name to position; Fx hashing because these keys are few and short and the
    /// lookup runs once per value of every request.
    pub(crate) positions: FxHashMap<String, usize>,
}

impl Schema {
    /// Derives the schema from the graph; `feature_names` names the columns of a dense
    /// input when the model's metadata does not.
    pub(crate) fn derive(
        facts: &GraphFacts,
        feature_names: Option<&[String]>,
    ) -> Result<Self, EngineError> {
        let (features, layout) = match facts.inputs.as_slice() {
            [] => return Err(invalid("the graph has no inputs")),
            [single] if is_dense(single) => dense_features(facts, single, feature_names)?,
            inputs => per_feature_inputs(facts, inputs)?,
        };
        let mut positions = FxHashMap::with_capacity_and_hasher(features.len(), Default::default());
        for (position, feature) in features.iter().enumerate() {
            if positions.insert(feature.name.clone(), position).is_some() {
                return Err(invalid(format!("feature `{}` appears twice", feature.name)));
            }
        }
        Ok(Schema {
            features,
            layout,
            positions,
        })
    }

    /// The name of the single dense `[N,F]` input whose columns are the features, or
    /// `None` when each feature is its own input.
    pub fn dense_input(&self) -> Option<&str> {
        match &self.layout {
            Layout::Dense { input_name } => Some(input_name),
            Layout::PerFeature { .. } => None,
        }
    }

    /// The position of the feature called `name` in `features`.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.positions.get(name).copied()
    }

    /// The feature called `name`, if the model has one.
    pub fn feature(&self, name: &str) -> Option<&Feature> {
        self.positions.get(name).map(|&p| &self.features[p])
    }
}

fn invalid(message: impl Into<String>) -> EngineError {
    EngineError::InvalidModel(message.into())
}

fn is_dense(input: &GraphInput) -> bool {
    input.dims.len() == 2
        && input.dims[1].is_none_or(|w| w > 1)
        && matches!(input.elem_type, elem_type::FLOAT | elem_type::DOUBLE)
}

fn tensor_type(input: &GraphInput) -> Result<TensorType, EngineError> {
    Ok(match input.elem_type {
        elem_type::FLOAT => TensorType::F32,
        elem_type::DOUBLE => TensorType::F64,
        elem_type::INT64 => TensorType::I64,
        elem_type::BOOL => TensorType::Bool,
        elem_type::STRING => TensorType::Text,
        other => {
            return Err(invalid(format!(
                "input `{}` has ONNX element type {other}; expected string, float, double, int64 or bool",
                input.name
            )));
        }
    })
}

fn categories(found: &ColumnCategories) -> Categories {
    Categories {
        index: found
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| (v.clone(), i))
            .collect(),
        values: found.values.clone(),
        unknown: found.unknown,
    }
}

fn per_feature_inputs(
    facts: &GraphFacts,
    inputs: &[GraphInput],
) -> Result<(Vec<Feature>, Layout), EngineError> {
    let mut features = Vec::with_capacity(inputs.len());
    let mut ranks = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let rank = match input.dims.as_slice() {
            [_] => 1,
            [_, width] if width.is_none_or(|w| w == 1) => 2,
            _ => {
                return Err(invalid(format!(
                    "input `{}` has shape {:?}; expected [N,1] per raw feature or a single dense [N,F] float input",
                    input.name, input.dims
                )));
            }
        };
        let tensor_type = tensor_type(input)?;
        let kind = match tensor_type {
            TensorType::Text => FeatureKind::Text,
            TensorType::Bool => FeatureKind::Bool,
            TensorType::F32 | TensorType::F64 | TensorType::I64 => FeatureKind::Number,
        };
        features.push(Feature {
            name: input.name.clone(),
            kind,
            categories: facts.categories.get(&(index, 0)).map(categories),
            missing_allowed: matches!(tensor_type, TensorType::F32 | TensorType::F64)
                && facts.missing_tolerant.contains(&(index, 0)),
            tensor_type,
        });
        ranks.push(rank);
    }
    let input_names = inputs.iter().map(|i| i.name.clone()).collect();
    Ok((features, Layout::PerFeature { input_names, ranks }))
}

fn dense_features(
    facts: &GraphFacts,
    input: &GraphInput,
    given_names: Option<&[String]>,
) -> Result<(Vec<Feature>, Layout), EngineError> {
    let names: Vec<String> = match (given_names, facts.metadata.get(FEATURE_NAMES_KEY)) {
        (Some(names), _) if !names.is_empty() => names.to_vec(),
        (_, Some(json)) => serde_json::from_str(json).map_err(|e| {
            invalid(format!(
                "metadata `{FEATURE_NAMES_KEY}` is not a JSON array of strings: {e}"
            ))
        })?,
        _ => {
            return Err(invalid(format!(
                "input `{}` is a dense [N,F] tensor; give its feature names at load time or in the `{FEATURE_NAMES_KEY}` metadata",
                input.name
            )));
        }
    };
    if let Some(width) = input.dims[1]
        && usize::try_from(width).ok() != Some(names.len())
    {
        return Err(invalid(format!(
            "input `{}` has {width} columns but {} feature names were given",
            input.name,
            names.len()
        )));
    }
    let mut coded: HashMap<String, Vec<String>> = match facts.metadata.get(CATEGORIES_KEY) {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            invalid(format!(
                "metadata `{CATEGORIES_KEY}` is not a JSON object of string arrays: {e}"
            ))
        })?,
        None => HashMap::new(),
    };
    let tensor_type = tensor_type(input)?;
    let features: Vec<Feature> = names
        .into_iter()
        .enumerate()
        .map(|(column, name)| {
            let categories = coded.remove(&name).map(|values| {
                categories(&ColumnCategories {
                    values,
                    unknown: UnknownCategory::Reject,
                })
            });
            Feature {
                kind: if categories.is_some() {
                    FeatureKind::Text
                } else {
                    FeatureKind::Number
                },
                categories,
                missing_allowed: facts.missing_tolerant.contains(&(0, column)),
                tensor_type,
                name,
            }
        })
        .collect();
    if let Some(unused) = coded.keys().next() {
        return Err(invalid(format!(
            "metadata `{CATEGORIES_KEY}` names `{unused}`, which is not one of the feature names"
        )));
    }
    Ok((
        features,
        Layout::Dense {
            input_name: input.name.clone(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphInput;

    fn facts(inputs: Vec<GraphInput>, metadata: &[(&str, &str)]) -> GraphFacts {
        GraphFacts {
            producer: String::new(),
            metadata: metadata
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            inputs,
            categories: HashMap::new(),
            missing_tolerant: Default::default(),
            class_labels: Vec::new(),
            probabilities: None,
            linear: Err(String::new()),
        }
    }

    fn input(name: &str, elem_type: i32, dims: &[Option<i64>]) -> GraphInput {
        GraphInput {
            name: name.to_owned(),
            elem_type,
            dims: dims.to_vec(),
        }
    }

    fn refusal(facts: &GraphFacts, names: Option<&[String]>) -> String {
        Schema::derive(facts, names)
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn dense_inputs_need_feature_names() {
        let dense = facts(vec![input("x", elem_type::FLOAT, &[None, Some(2)])], &[]);
        assert!(refusal(&dense, None).contains(
            "give its feature names at load time or in the `churnserve.feature_names` metadata"
        ));
        let names = ["tenure".to_owned(), "charges".to_owned()];
        let schema = Schema::derive(&dense, Some(&names)).expect("named at load time");
        assert_eq!(
            schema.features.iter().map(|f| f.kind).collect::<Vec<_>>(),
            [FeatureKind::Number; 2]
        );

        let coded = facts(
            vec![input("x", elem_type::FLOAT, &[None, None])],
            &[
                (FEATURE_NAMES_KEY, r#"["plan","tenure"]"#),
                (CATEGORIES_KEY, r#"{"plan":["basic","pro"]}"#),
            ],
        );
        let schema = Schema::derive(&coded, None).expect("named in metadata");
        assert_eq!(
            schema.feature("plan").map(|f| f.kind),
            Some(FeatureKind::Text)
        );

        let stray = facts(
            vec![
                input("x", elem_type::FLOAT, &[None, Some(1)]),
                input("y", elem_type::FLOAT, &[None, Some(1)]),
            ],
            &[(CATEGORIES_KEY, r#"{"plan":["basic"]}"#)],
        );
        assert!(
            Schema::derive(&stray, None).is_ok(),
            "per-feature inputs ignore dense metadata"
        );
        let wrong = facts(
            vec![input("x", elem_type::FLOAT, &[None, Some(2)])],
            &[
                (FEATURE_NAMES_KEY, r#"["a","b"]"#),
                (CATEGORIES_KEY, r#"{"c":["x"]}"#),
            ],
        );
        assert!(refusal(&wrong, None).contains("names `c`, which is not one of the feature names"));
    }

    #[test]
    fn inputs_the_engine_cannot_feed_are_refused() {
        let wide = facts(
            vec![
                input("a", elem_type::STRING, &[None, Some(1)]),
                input("b", elem_type::STRING, &[None, Some(3)]),
            ],
            &[],
        );
        assert!(refusal(&wide, None).contains("input `b` has shape"));
        let int32 = facts(
            vec![
                input("a", elem_type::INT32, &[None, Some(1)]),
                input("b", elem_type::FLOAT, &[None, Some(1)]),
            ],
            &[],
        );
        assert!(refusal(&int32, None).contains("input `a` has ONNX element type 6"));
        assert!(refusal(&facts(Vec::new(), &[]), None).contains("no inputs"));
    }
}
