//! Validation of customers against a schema and their encoding into the column buffers
//! the graph's input tensors are made from. Every problem is reported per row and per
//! feature; valid rows are encoded whatever their neighbours look like.

mod customers;

pub use customers::{
    ColumnValues, Customer, CustomerBatch, CustomerColumns, FeatureProblem, FeatureValue, RowError,
    ValueRef, abbreviated,
};

use crate::graph::UnknownCategory;
use crate::schema::{Feature, FeatureKind, Layout, Schema, TensorType};

/// Longest text value accepted: category labels are short, and a message that names an
/// unknown category repeats the value.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Longest customer id accepted; it is repeated in answers and error messages.
pub const MAX_ID_BYTES: usize = 256;
/// Unknown feature names named one by one in a row's error; the rest are counted.
const UNKNOWN_NAMES_REPORTED: usize = 8;

/// One input tensor's values, one per valid row.
#[derive(Debug)]
pub(crate) enum Column {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    /// Owned because ONNX Runtime's string tensors copy from `'static` element types.
    Text(Vec<String>),
}

/// The valid rows of a batch, encoded for the graph.
#[derive(Debug)]
pub(crate) struct Encoded {
    /// Index in the request of each encoded row.
    pub rows: Vec<usize>,
    /// Per-feature tensors, or a single dense column-major-by-row tensor.
    pub columns: Vec<Column>,
    /// Text values outside the known categories that the model scores anyway.
    pub unknown_categories: u64,
}

/// One validated value before it lands in its column.
#[derive(Debug, Clone, Copy)]
enum Scalar<'a> {
    Real(f64),
    Integer(i64),
    Flag(bool),
    Text(&'a str),
    Code(usize),
}

/// A batch in either form, read row by row by schema position.
pub(crate) trait RowSource<'a> {
    fn rows(&self) -> usize;
    fn id(&self, row: usize) -> &'a str;
    /// Puts the row's values at their schema positions; names a feature given twice
    /// and collects the names the schema does not know.
    fn gather(
        &self,
        schema: &Schema,
        row: usize,
        by_position: &mut [Option<ValueRef<'a>>],
        problems: &mut Vec<FeatureProblem>,
        unknown_names: &mut Vec<&'a str>,
    );
}

impl<'a> RowSource<'a> for &'a [Customer] {
    fn rows(&self) -> usize {
        self.len()
    }

    fn id(&self, row: usize) -> &'a str {
        let customers: &'a [Customer] = self;
        &customers[row].id
    }

    fn gather(
        &self,
        schema: &Schema,
        row: usize,
        by_position: &mut [Option<ValueRef<'a>>],
        problems: &mut Vec<FeatureProblem>,
        unknown_names: &mut Vec<&'a str>,
    ) {
        let customers: &'a [Customer] = self;
        for (name, value) in &customers[row].features {
            place(
                schema,
                name,
                ValueRef::from(value),
                by_position,
                problems,
                unknown_names,
            );
        }
    }
}

/// Rows `first..first + count` of a batch of columns: a part of a large batch, encoded on
/// a thread of its own.
pub(crate) struct ColumnRows<'a> {
    pub columns: &'a CustomerColumns,
    pub first: usize,
    pub count: usize,
}

impl<'a> RowSource<'a> for ColumnRows<'a> {
    fn rows(&self) -> usize {
        self.count
    }

    fn id(&self, row: usize) -> &'a str {
        &self.columns.ids[self.first + row]
    }

    fn gather(
        &self,
        schema: &Schema,
        row: usize,
        by_position: &mut [Option<ValueRef<'a>>],
        problems: &mut Vec<FeatureProblem>,
        unknown_names: &mut Vec<&'a str>,
    ) {
        for (name, values) in &self.columns.columns {
            place(
                schema,
                name,
                values.get(self.first + row),
                by_position,
                problems,
                unknown_names,
            );
        }
    }
}

fn place<'a>(
    schema: &Schema,
    name: &'a str,
    value: ValueRef<'a>,
    by_position: &mut [Option<ValueRef<'a>>],
    problems: &mut Vec<FeatureProblem>,
    unknown_names: &mut Vec<&'a str>,
) {
    match schema.positions.get(name) {
        Some(&position) if by_position[position].is_some() => problems.push(FeatureProblem {
            feature: name.to_owned(),
            message: "is given more than once".to_owned(),
        }),
        Some(&position) => by_position[position] = Some(value),
        None => unknown_names.push(name),
    }
}

/// Validates every customer; returns the encoded valid rows and, per request row, its error.
pub(crate) fn encode<'a>(
    schema: &Schema,
    customers: impl RowSource<'a>,
) -> (Encoded, Vec<Option<RowError>>) {
    let rows_in = customers.rows();
    let mut columns = empty_columns(schema, rows_in);
    let mut rows = Vec::with_capacity(rows_in);
    let mut errors = Vec::with_capacity(rows_in);
    let mut unknown_categories = 0;
    let mut scalars = Vec::with_capacity(schema.features.len());
    let mut by_position: Vec<Option<ValueRef<'a>>> = vec![None; schema.features.len()];
    let mut unknown_names = Vec::new();
    for row in 0..rows_in {
        scalars.clear();
        by_position.fill(None);
        unknown_names.clear();
        let mut problems = Vec::new();
        customers.gather(
            schema,
            row,
            &mut by_position,
            &mut problems,
            &mut unknown_names,
        );
        let mut row_unknowns = 0;
        for (feature, value) in schema.features.iter().zip(&by_position) {
            match encode_value(feature, *value) {
                Ok((scalar, unknown)) => {
                    scalars.push(scalar);
                    row_unknowns += u64::from(unknown);
                }
                Err(message) => problems.push(FeatureProblem {
                    feature: feature.name.clone(),
                    message,
                }),
            }
        }
        unknown_names.sort_unstable();
        problems.extend(
            unknown_names
                .iter()
                .take(UNKNOWN_NAMES_REPORTED)
                .map(|name| FeatureProblem {
                    feature: abbreviated(name),
                    message: "is not an input of this model".to_owned(),
                }),
        );
        if unknown_names.len() > UNKNOWN_NAMES_REPORTED {
            problems.push(FeatureProblem::whole_row(format!(
                "and {} more features that are not inputs of this model",
                unknown_names.len() - UNKNOWN_NAMES_REPORTED
            )));
        }
        let id = customers.id(row);
        if id.len() > MAX_ID_BYTES {
            problems.push(FeatureProblem::whole_row(format!(
                "the customer id has {} bytes; at most {MAX_ID_BYTES} are accepted",
                id.len()
            )));
        }
        if problems.is_empty() {
            push_row(&schema.layout, &mut columns, &scalars);
            rows.push(row);
            unknown_categories += row_unknowns;
            errors.push(None);
        } else {
            errors.push(Some(RowError { problems }));
        }
    }
    (
        Encoded {
            rows,
            columns,
            unknown_categories,
        },
        errors,
    )
}

fn empty_columns(schema: &Schema, capacity: usize) -> Vec<Column> {
    match &schema.layout {
        Layout::PerFeature { .. } => schema
            .features
            .iter()
            .map(|f| match f.tensor_type {
                TensorType::F32 => Column::F32(Vec::with_capacity(capacity)),
                TensorType::F64 => Column::F64(Vec::with_capacity(capacity)),
                TensorType::I64 => Column::I64(Vec::with_capacity(capacity)),
                TensorType::Bool => Column::Bool(Vec::with_capacity(capacity)),
                TensorType::Text => Column::Text(Vec::with_capacity(capacity)),
            })
            .collect(),
        Layout::Dense { .. } => {
            let values = capacity * schema.features.len();
            match schema.features.first().map(|f| f.tensor_type) {
                Some(TensorType::F64) => vec![Column::F64(Vec::with_capacity(values))],
                _ => vec![Column::F32(Vec::with_capacity(values))],
            }
        }
    }
}

fn push_row(layout: &Layout, columns: &mut [Column], scalars: &[Scalar<'_>]) {
    match layout {
        Layout::PerFeature { .. } => {
            for (column, &scalar) in columns.iter_mut().zip(scalars) {
                match (column, scalar) {
                    (Column::F32(values), Scalar::Real(v)) => values.push(v as f32),
                    (Column::F64(values), Scalar::Real(v)) => values.push(v),
                    (Column::I64(values), Scalar::Integer(v)) => values.push(v),
                    (Column::Bool(values), Scalar::Flag(v)) => values.push(v),
                    (Column::Text(values), Scalar::Text(v)) => values.push(v.to_owned()),
                    (column, scalar) => unreachable!("{scalar:?} validated for a {column:?} input"),
                }
            }
        }
        Layout::Dense { .. } => {
            let as_real = |scalar: &Scalar<'_>| match *scalar {
                Scalar::Real(v) => v,
                Scalar::Code(code) => code as f64,
                other => unreachable!("{other:?} validated for a dense input"),
            };
            match &mut columns[0] {
                Column::F64(values) => values.extend(scalars.iter().map(as_real)),
                Column::F32(values) => values.extend(scalars.iter().map(|s| as_real(s) as f32)),
                other => unreachable!("dense input built as {other:?}"),
            }
        }
    }
}

/// Checks one value against its feature; the flag says it is a category the model has
/// not seen but scores anyway.
fn encode_value<'a>(
    feature: &Feature,
    value: Option<ValueRef<'a>>,
) -> Result<(Scalar<'a>, bool), String> {
    let Some(value) = value else {
        return Err(format!(
            "is required but absent; expected {}",
            expectation(feature)
        ));
    };
    match (feature.kind, value) {
        (FeatureKind::Number, ValueRef::Number(v)) if v.is_nan() => missing_number(feature),
        (FeatureKind::Number, ValueRef::Missing) => missing_number(feature),
        (FeatureKind::Number, ValueRef::Number(v)) if v.is_infinite() => {
            Err(format!("expected a finite number, got {v}"))
        }
        (FeatureKind::Number, ValueRef::Number(v)) => number(feature, v),
        (FeatureKind::Text, ValueRef::Text(text)) if text.len() > MAX_TEXT_BYTES => Err(format!(
            "text of {} bytes is longer than the limit of {MAX_TEXT_BYTES} bytes",
            text.len()
        )),
        (FeatureKind::Text, ValueRef::Text(text)) if text.contains('\0') => {
            Err("text must not contain a NUL character".to_owned())
        }
        (FeatureKind::Text, ValueRef::Text(text)) => category(feature, text),
        (FeatureKind::Bool, ValueRef::Flag(flag)) => Ok((Scalar::Flag(flag), false)),
        (_, ValueRef::Missing) => Err(format!("has no value; expected {}", expectation(feature))),
        (_, other) => Err(format!(
            "expected {}, got {}",
            expectation(feature),
            describe(other)
        )),
    }
}

fn number<'a>(feature: &Feature, value: f64) -> Result<(Scalar<'a>, bool), String> {
    if feature.tensor_type != TensorType::I64 {
        return Ok((Scalar::Real(value), false));
    }
    // i64::MAX is not representable as f64; the bound below is the largest that is.
    const LIMIT: f64 = 9_223_372_036_854_774_784.0;
    if value.fract() != 0.0 || value.abs() > LIMIT {
        return Err(format!("expected a whole number, got {value}"));
    }
    Ok((Scalar::Integer(value as i64), false))
}

fn missing_number<'a>(feature: &Feature) -> Result<(Scalar<'a>, bool), String> {
    if feature.missing_allowed {
        Ok((Scalar::Real(f64::NAN), false))
    } else {
        Err("is missing, and this model has no imputation for it; expected a number".to_owned())
    }
}

fn category<'a>(feature: &Feature, text: &'a str) -> Result<(Scalar<'a>, bool), String> {
    let dense = feature.tensor_type != TensorType::Text;
    let Some(categories) = &feature.categories else {
        return Ok((Scalar::Text(text), false));
    };
    match categories.index.get(text) {
        Some(&code) if dense => Ok((Scalar::Code(code), false)),
        Some(_) => Ok((Scalar::Text(text), false)),
        None if categories.unknown == UnknownCategory::Score && !dense => {
            Ok((Scalar::Text(text), true))
        }
        None => Err(format!(
            "unknown category {text:?}; expected one of {}",
            quoted(&categories.values)
        )),
    }
}

fn expectation(feature: &Feature) -> String {
    match (feature.kind, &feature.categories) {
        (FeatureKind::Number, _) if feature.tensor_type == TensorType::I64 => {
            "a whole number".to_owned()
        }
        (FeatureKind::Number, _) => "a number".to_owned(),
        (FeatureKind::Text, Some(categories)) => {
            format!("text, one of {}", quoted(&categories.values))
        }
        (FeatureKind::Text, None) => "text".to_owned(),
        (FeatureKind::Bool, _) => "a flag (true or false)".to_owned(),
    }
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Number(v) => format!("the number {v}"),
        ValueRef::Text(text) => format!("the text {text:?}"),
        ValueRef::Flag(flag) => format!("the flag {flag}"),
        ValueRef::Missing => "no value".to_owned(),
    }
}

fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}
