//! Reads what the engine needs from an ONNX graph: its inputs, which raw input column
//! feeds each categorical encoder (and with which categories and unknown-value policy),
//! which columns tolerate missing values, the class labels and the probability output.

use std::collections::{HashMap, HashSet};

use crate::onnx_proto::{GraphProto, ModelProto, NodeProto, ValueInfoProto, elem_type};

/// A graph input, with its element type and static shape (`None` for a symbolic dimension).
#[derive(Debug, Clone)]
pub struct GraphInput {
    pub name: String,
    pub elem_type: i32,
    pub dims: Vec<Option<i64>>,
}

/// What an encoder in the graph does with a category it has not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCategory {
    /// The graph fails at run time (`OneHotEncoder` with `zeros=0`): reject up front.
    Reject,
    /// The graph maps it to zeros or a default (`zeros=1`, `LabelEncoder`): score it.
    Score,
}

/// Categories of one input column, read from the encoder that consumes it.
#[derive(Debug, Clone)]
pub struct ColumnCategories {
    pub values: Vec<String>,
    pub unknown: UnknownCategory,
}

/// Where the class probabilities can be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbabilitySource {
    /// A float or double tensor output `[N,C]` or `[N,1]`.
    Output { name: String, elem_type: i32 },
    /// The tensor a `ZipMap` turns into a sequence of maps; the engine adds it as an extra
    /// graph output to read the same numbers without building maps.
    ZipMapInput { name: String },
}

/// Everything the engine derives from the graph.
#[derive(Debug, Clone)]
pub struct GraphFacts {
    pub producer: String,
    pub metadata: HashMap<String, String>,
    pub inputs: Vec<GraphInput>,
    /// `(input index, column)` to the categories of the encoder reading that column.
    pub categories: HashMap<(usize, usize), ColumnCategories>,
    /// `(input index, column)` pairs that reach an imputer or a tree ensemble, which both
    /// handle NaN by design.
    pub missing_tolerant: HashSet<(usize, usize)>,
    pub class_labels: Vec<String>,
    pub probabilities: Option<ProbabilitySource>,
    /// The linear classifier scoring the encoded raw features, or why there is none.
    pub linear: Result<LinearFacts, String>,
}

/// A `LinearClassifier` and where each of its input columns comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearFacts {
    /// The tensor it reads: the encoded features.
    pub input: String,
    /// `(input index, column)` of the raw value behind each encoded column.
    pub origins: Vec<Column>,
    /// One row of coefficients per score, `origins.len()` each.
    pub coefficients: Vec<Vec<f64>>,
    /// One intercept per score.
    pub intercepts: Vec<f64>,
    pub post_transform: String,
}

pub type Column = (usize, usize);

const PASS_THROUGH: &[&str] = &["Identity", "Cast", "CastLike"];
/// Operators whose output column `i` is computed from input column `i` alone.
const COLUMN_WISE: &[&str] = &["Scaler", "Imputer", "Binarizer"];
const SINGLE_COLUMN_RESHAPES: &[&str] = &["Reshape", "Squeeze", "Unsqueeze", "Flatten"];
const CLASSIFIERS: &[&str] = &[
    "LinearClassifier",
    "TreeEnsembleClassifier",
    "SVMClassifier",
    "ZipMap",
];

pub fn analyze(model: &ModelProto) -> Result<GraphFacts, String> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| "the model has no graph".to_owned())?;
    let initializers: HashMap<&str, _> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    let inputs: Vec<GraphInput> = graph
        .input
        .iter()
        .filter(|i| !initializers.contains_key(i.name.as_str()))
        .map(graph_input)
        .collect::<Result<_, _>>()?;

    let mut columns: HashMap<&str, Vec<Column>> = HashMap::new();
    for (index, input) in inputs.iter().enumerate() {
        let width = match input.dims.as_slice() {
            [_] => Some(1),
            [_, width] => *width,
            _ => None,
        };
        if let Some(width) = width.and_then(|w| usize::try_from(w).ok()) {
            columns.insert(&input.name, (0..width).map(|c| (index, c)).collect());
        }
    }

    let mut categories = HashMap::new();
    let mut missing_tolerant = HashSet::new();
    let mut linear = Vec::new();
    for node in &graph.node {
        let source = node
            .input
            .first()
            .and_then(|name| columns.get(name.as_str()))
            .cloned();
        let Some(source) = source else { continue };
        let op = node.op_type.as_str();
        let one_origin = source.windows(2).all(|w| w[0] == w[1]);
        let derived = if PASS_THROUGH.contains(&op)
            || COLUMN_WISE.contains(&op)
            || (SINGLE_COLUMN_RESHAPES.contains(&op) && one_origin)
        {
            Some(source.clone())
        } else if op == "Concat" {
            concat_columns(node, &columns)
        } else if op == "Gather" || op == "ArrayFeatureExtractor" {
            select_columns(node, &source, &initializers)
        } else if let ("OneHotEncoder", [column]) = (op, source.as_slice()) {
            one_hot_categories(node).map(|found| vec![*column; found.values.len()])
        } else {
            None
        };
        if let Some(derived) = derived {
            for output in &node.output {
                columns.insert(output, derived.clone());
            }
        }
        if op == "LinearClassifier" {
            linear.push(linear_classifier(node, source.clone()));
        }
        match (op, source.as_slice()) {
            ("OneHotEncoder", [column]) => {
                if let Some(found) = one_hot_categories(node) {
                    categories.insert(*column, found);
                }
            }
            ("LabelEncoder", [column]) => {
                if let Some(keys) = node.attribute("keys_strings") {
                    categories.insert(
                        *column,
                        ColumnCategories {
                            values: keys.strings_utf8(),
                            unknown: UnknownCategory::Score,
                        },
                    );
                }
            }
            ("Imputer", _)
            | ("TreeEnsembleClassifier", _)
            | ("TreeEnsembleRegressor", _)
            | ("TreeEnsemble", _) => missing_tolerant.extend(source.iter().copied()),
            _ => {}
        }
    }

    Ok(GraphFacts {
        producer: model.producer_name.clone(),
        metadata: model
            .metadata_props
            .iter()
            .map(|p| (p.key.clone(), p.value.clone()))
            .collect(),
        class_labels: class_labels(graph),
        probabilities: probability_source(graph),
        linear: match linear.len() {
            1 => linear.pop().expect("one"),
            0 => Err("the graph has no LinearClassifier whose input columns can be traced to the raw features".to_owned()),
            _ => Err("the graph has more than one LinearClassifier".to_owned()),
        },
        inputs,
        categories,
        missing_tolerant,
    })
}

fn linear_classifier(node: &NodeProto, origins: Vec<Column>) -> Result<LinearFacts, String> {
    let coefficients = node
        .attribute("coefficients")
        .map(|a| a.floats.iter().map(|&v| f64::from(v)).collect::<Vec<_>>())
        .ok_or("the LinearClassifier has no coefficients")?;
    let width = origins.len();
    if width == 0 || coefficients.len() % width != 0 {
        return Err(format!(
            "the LinearClassifier has {} coefficients for {width} traced input columns",
            coefficients.len()
        ));
    }
    let rows = coefficients.len() / width;
    let intercepts = node.attribute("intercepts").map_or_else(
        || vec![0.0; rows],
        |a| a.floats.iter().map(|&v| f64::from(v)).collect(),
    );
    if intercepts.len() != rows {
        return Err(format!(
            "the LinearClassifier has {} intercepts for {rows} rows of coefficients",
            intercepts.len()
        ));
    }
    Ok(LinearFacts {
        input: node.input[0].clone(),
        coefficients: coefficients.chunks(width).map(<[f64]>::to_vec).collect(),
        intercepts,
        post_transform: node.attribute("post_transform").map_or_else(
            || "NONE".to_owned(),
            |a| String::from_utf8_lossy(&a.s).into_owned(),
        ),
        origins,
    })
}

fn graph_input(info: &ValueInfoProto) -> Result<GraphInput, String> {
    let tensor = info
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| format!("input `{}` is not a tensor", info.name))?;
    let dims = tensor
        .shape
        .as_ref()
        .map(|s| s.dim.iter().map(|d| d.dim_value).collect())
        .unwrap_or_default();
    Ok(GraphInput {
        name: info.name.clone(),
        elem_type: tensor.elem_type,
        dims,
    })
}

fn concat_columns(node: &NodeProto, columns: &HashMap<&str, Vec<Column>>) -> Option<Vec<Column>> {
    let axis = node.attribute("axis").map_or(0, |a| a.i);
    if axis != 1 && axis != -1 {
        return None;
    }
    let mut joined = Vec::new();
    for input in &node.input {
        joined.extend(columns.get(input.as_str())?.iter().copied());
    }
    Some(joined)
}

fn select_columns(
    node: &NodeProto,
    source: &[Column],
    initializers: &HashMap<&str, &crate::onnx_proto::TensorProto>,
) -> Option<Vec<Column>> {
    if node.op_type == "Gather" && node.attribute("axis").map_or(0, |a| a.i) != 1 {
        return None;
    }
    let indices = initializers.get(node.input.get(1)?.as_str())?.integers()?;
    indices
        .into_iter()
        .map(|i| {
            let i = if i < 0 { i + source.len() as i64 } else { i };
            source.get(usize::try_from(i).ok()?).copied()
        })
        .collect()
}

fn one_hot_categories(node: &NodeProto) -> Option<ColumnCategories> {
    let values = if let Some(strings) = node.attribute("cats_strings") {
        strings.strings_utf8()
    } else {
        let ints = node.attribute("cats_int64s")?;
        ints.ints.iter().map(i64::to_string).collect()
    };
    // `zeros` defaults to 1 in the operator's definition.
    let ignores_unknown = node.attribute("zeros").is_none_or(|a| a.i != 0);
    Some(ColumnCategories {
        values,
        unknown: if ignores_unknown {
            UnknownCategory::Score
        } else {
            UnknownCategory::Reject
        },
    })
}

fn class_labels(graph: &GraphProto) -> Vec<String> {
    for node in graph
        .node
        .iter()
        .filter(|n| CLASSIFIERS.contains(&n.op_type.as_str()))
    {
        for name in [
            "classlabels_strings",
            "classlabels_int64s",
            "classlabels_ints",
        ] {
            if let Some(attribute) = node.attribute(name) {
                if !attribute.strings.is_empty() {
                    return attribute.strings_utf8();
                }
                if !attribute.ints.is_empty() {
                    return attribute.ints.iter().map(i64::to_string).collect();
                }
            }
        }
    }
    Vec::new()
}

fn probability_source(graph: &GraphProto) -> Option<ProbabilitySource> {
    let float_outputs: Vec<(&str, i32)> = graph
        .output
        .iter()
        .filter_map(|o| {
            let tensor = o.r#type.as_ref()?.tensor_type.as_ref()?;
            matches!(tensor.elem_type, elem_type::FLOAT | elem_type::DOUBLE)
                .then_some((o.name.as_str(), tensor.elem_type))
        })
        .collect();
    let preferred = float_outputs
        .iter()
        .find(|(name, _)| name.to_ascii_lowercase().contains("prob"))
        .or(float_outputs.first());
    if let Some((name, elem_type)) = preferred {
        return Some(ProbabilitySource::Output {
            name: (*name).to_owned(),
            elem_type: *elem_type,
        });
    }
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    graph
        .node
        .iter()
        .find(|n| n.op_type == "ZipMap" && n.output.iter().any(|o| outputs.contains(o.as_str())))
        .and_then(|n| n.input.first())
        .map(|name| ProbabilitySource::ZipMapInput { name: name.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx_proto::{
        AttributeProto, DimensionProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    };

    fn tensor(name: &str, elem_type: i32, dims: &[Option<i64>]) -> ValueInfoProto {
        ValueInfoProto {
            name: name.to_owned(),
            r#type: Some(TypeProto {
                tensor_type: Some(TensorTypeProto {
                    elem_type,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|d| DimensionProto {
                                dim_value: *d,
                                dim_param: String::new(),
                            })
                            .collect(),
                    }),
                }),
                sequence_type: None,
            }),
        }
    }

    fn node(
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attributes: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            name: format!("{op_type}_{}", outputs[0]),
            op_type: op_type.to_owned(),
            attribute: attributes,
            domain: String::new(),
        }
    }

    fn int(name: &str, value: i64) -> AttributeProto {
        AttributeProto {
            name: name.to_owned(),
            i: value,
            ..AttributeProto::default()
        }
    }

    fn strings(name: &str, values: &[&str]) -> AttributeProto {
        AttributeProto {
            name: name.to_owned(),
            strings: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ..AttributeProto::default()
        }
    }

    fn model(graph: GraphProto) -> ModelProto {
        ModelProto {
            graph: Some(graph),
            ..ModelProto::default()
        }
    }

    #[test]
    fn categories_follow_columns_through_concat_and_extraction() {
        let graph = GraphProto {
            input: vec![
                tensor("plan", elem_type::STRING, &[None, Some(1)]),
                tensor("region", elem_type::STRING, &[None, Some(1)]),
            ],
            initializer: vec![TensorProto {
                name: "second".to_owned(),
                data_type: elem_type::INT64,
                raw_data: 1i64.to_le_bytes().to_vec(),
                ..TensorProto::default()
            }],
            node: vec![
                node(
                    "Concat",
                    &["plan", "region"],
                    &["both"],
                    vec![int("axis", 1)],
                ),
                node(
                    "ArrayFeatureExtractor",
                    &["both", "second"],
                    &["region_only"],
                    vec![],
                ),
                node("Identity", &["region_only"], &["region_again"], vec![]),
                node(
                    "OneHotEncoder",
                    &["region_again"],
                    &["encoded"],
                    vec![
                        strings("cats_strings", &["north", "south"]),
                        int("zeros", 0),
                    ],
                ),
                node(
                    "LabelEncoder",
                    &["plan"],
                    &["plan_code"],
                    vec![strings("keys_strings", &["basic", "pro"])],
                ),
            ],
            ..GraphProto::default()
        };
        let facts = analyze(&model(graph)).expect("analyzable");
        let region = &facts.categories[&(1, 0)];
        assert_eq!(
            (region.values.as_slice(), region.unknown),
            (
                &["north".to_owned(), "south".to_owned()][..],
                UnknownCategory::Reject
            )
        );
        let plan = &facts.categories[&(0, 0)];
        assert_eq!(
            (plan.values.len(), plan.unknown),
            (2, UnknownCategory::Score)
        );
    }

    #[test]
    fn gather_along_rows_is_not_a_column_selection() {
        let graph = GraphProto {
            input: vec![tensor("plan", elem_type::STRING, &[None, Some(1)])],
            initializer: vec![TensorProto {
                name: "zero".to_owned(),
                int64_data: vec![0],
                ..TensorProto::default()
            }],
            node: vec![
                node("Gather", &["plan", "zero"], &["row"], vec![int("axis", 0)]),
                node(
                    "OneHotEncoder",
                    &["row"],
                    &["encoded"],
                    vec![strings("cats_strings", &["a"])],
                ),
            ],
            ..GraphProto::default()
        };
        assert!(
            analyze(&model(graph))
                .expect("analyzable")
                .categories
                .is_empty()
        );
    }

    #[test]
    fn imputers_and_trees_make_their_columns_missing_tolerant() {
        let graph = GraphProto {
            input: vec![
                tensor("charges", elem_type::FLOAT, &[None, Some(1)]),
                tensor("tenure", elem_type::FLOAT, &[None, Some(1)]),
                tensor("age", elem_type::FLOAT, &[None, Some(1)]),
            ],
            node: vec![
                node(
                    "Concat",
                    &["charges", "tenure"],
                    &["numbers"],
                    vec![int("axis", -1)],
                ),
                node("Imputer", &["numbers"], &["imputed"], vec![]),
                node("Scaler", &["age"], &["scaled"], vec![]),
            ],
            ..GraphProto::default()
        };
        let facts = analyze(&model(graph)).expect("analyzable");
        assert_eq!(facts.missing_tolerant, HashSet::from([(0, 0), (1, 0)]));

        let dense = GraphProto {
            input: vec![tensor("input", elem_type::FLOAT, &[None, Some(3)])],
            node: vec![node(
                "TreeEnsembleClassifier",
                &["input"],
                &["label", "probabilities"],
                vec![],
            )],
            ..GraphProto::default()
        };
        let facts = analyze(&model(dense)).expect("analyzable");
        assert_eq!(
            facts.missing_tolerant,
            HashSet::from([(0, 0), (0, 1), (0, 2)])
        );
    }

    #[test]
    fn probabilities_come_from_a_float_output_or_the_zipmap_input() {
        let with_tensor = GraphProto {
            output: vec![
                tensor("label", elem_type::INT64, &[None]),
                tensor("variable", elem_type::FLOAT, &[None, Some(2)]),
                tensor("probabilities", elem_type::FLOAT, &[None, Some(2)]),
            ],
            ..GraphProto::default()
        };
        assert_eq!(
            analyze(&model(with_tensor))
                .expect("analyzable")
                .probabilities,
            Some(ProbabilitySource::Output {
                name: "probabilities".to_owned(),
                elem_type: elem_type::FLOAT
            })
        );

        let zipmap = GraphProto {
            output: vec![
                tensor("label", elem_type::STRING, &[None]),
                ValueInfoProto {
                    name: "output_probability".to_owned(),
                    r#type: None,
                },
            ],
            node: vec![
                node(
                    "LinearClassifier",
                    &["x"],
                    &["label", "scores"],
                    vec![strings("classlabels_strings", &["stay", "leave"])],
                ),
                node("ZipMap", &["scores"], &["output_probability"], vec![]),
            ],
            ..GraphProto::default()
        };
        let facts = analyze(&model(zipmap)).expect("analyzable");
        assert_eq!(
            facts.probabilities,
            Some(ProbabilitySource::ZipMapInput {
                name: "scores".to_owned()
            })
        );
        assert_eq!(facts.class_labels, ["stay", "leave"]);
    }

    #[test]
    fn a_model_without_a_graph_is_refused() {
        assert_eq!(
            analyze(&ModelProto::default()).expect_err("no graph"),
            "the model has no graph"
        );
    }
}
