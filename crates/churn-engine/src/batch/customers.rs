//! Customers as callers send them, as rows or as columns, and what is wrong with a row
//! that cannot be scored.

use std::fmt;

use crate::schema::Schema;

/// One raw feature value as a caller sends it.
#[derive(Debug, Clone, PartialEq)]
pub enum FeatureValue {
    Number(f64),
    Text(String),
    Flag(bool),
    /// Sent with no value: a missing number, fed to the model as NaN where it allows it.
    Missing,
}

/// One customer to score, by the model's raw feature names, in any order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Customer {
    pub id: String,
    pub features: Vec<(String, FeatureValue)>,
}

/// Customers as columns, the bulk form: no feature name repeated per row, numbers packed.
/// Row `i` is `ids[i]` with value `i` of every column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerColumns {
    pub ids: Vec<String>,
    pub columns: Vec<(String, ColumnValues)>,
}

/// One feature's values, one per customer.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// NaN is a missing number.
    Numbers(Vec<f64>),
    Texts(Vec<String>),
    Flags(Vec<bool>),
    /// Values of mixed kinds.
    Values(Vec<FeatureValue>),
}

impl ColumnValues {
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::Numbers(values) => values.len(),
            ColumnValues::Texts(values) => values.len(),
            ColumnValues::Flags(values) => values.len(),
            ColumnValues::Values(values) => values.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn get(&self, row: usize) -> ValueRef<'_> {
        match self {
            ColumnValues::Numbers(values) => ValueRef::Number(values[row]),
            ColumnValues::Texts(values) => ValueRef::Text(&values[row]),
            ColumnValues::Flags(values) => ValueRef::Flag(values[row]),
            ColumnValues::Values(values) => ValueRef::from(&values[row]),
        }
    }
}

impl CustomerColumns {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The first column whose length is not the number of ids, with its length.
    pub fn ragged_column(&self) -> Option<(&str, usize)> {
        self.columns
            .iter()
            .find(|(_, values)| values.len() != self.ids.len())
            .map(|(name, values)| (name.as_str(), values.len()))
    }

    /// Row `row` in the row form.
    pub fn customer(&self, row: usize) -> Customer {
        Customer {
            id: self.ids[row].clone(),
            features: self
                .columns
                .iter()
                .map(|(name, values)| (name.clone(), values.get(row).to_owned()))
                .collect(),
        }
    }
}

/// A batch in either form callers send.
#[derive(Debug, Clone, PartialEq)]
pub enum CustomerBatch {
    Rows(Vec<Customer>),
    Columns(CustomerColumns),
}

impl CustomerBatch {
    pub fn len(&self) -> usize {
        match self {
            CustomerBatch::Rows(rows) => rows.len(),
            CustomerBatch::Columns(columns) => columns.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn id(&self, row: usize) -> &str {
        match self {
            CustomerBatch::Rows(rows) => &rows[row].id,
            CustomerBatch::Columns(columns) => &columns.ids[row],
        }
    }

    /// Row `row` in the row form.
    pub fn customer(&self, row: usize) -> Customer {
        match self {
            CustomerBatch::Rows(rows) => rows[row].clone(),
            CustomerBatch::Columns(columns) => columns.customer(row),
        }
    }

    /// The customer ids, in order.
    pub fn into_ids(self) -> Vec<String> {
        match self {
            CustomerBatch::Rows(rows) => rows.into_iter().map(|c| c.id).collect(),
            CustomerBatch::Columns(columns) => columns.ids,
        }
    }

    /// The batch dealt into `parts` batches by each row's part, in the form it came in and
    /// in row order within each part; rows of no part (`None`) are dropped.
    pub fn partition(self, part_of_row: &[Option<usize>], parts: usize) -> Vec<CustomerBatch> {
        match self {
            CustomerBatch::Rows(rows) => deal(rows, part_of_row, parts)
                .into_iter()
                .map(CustomerBatch::Rows)
                .collect(),
            CustomerBatch::Columns(columns) => {
                let mut dealt: Vec<CustomerColumns> = deal(columns.ids, part_of_row, parts)
                    .into_iter()
                    .map(|ids| CustomerColumns {
                        ids,
                        columns: Vec::with_capacity(columns.columns.len()),
                    })
                    .collect();
                for (name, values) in columns.columns {
                    let values: Vec<ColumnValues> = match values {
                        ColumnValues::Numbers(v) => deal(v, part_of_row, parts)
                            .into_iter()
                            .map(ColumnValues::Numbers)
                            .collect(),
                        ColumnValues::Texts(v) => deal(v, part_of_row, parts)
                            .into_iter()
                            .map(ColumnValues::Texts)
                            .collect(),
                        ColumnValues::Flags(v) => deal(v, part_of_row, parts)
                            .into_iter()
                            .map(ColumnValues::Flags)
                            .collect(),
                        ColumnValues::Values(v) => deal(v, part_of_row, parts)
                            .into_iter()
                            .map(ColumnValues::Values)
                            .collect(),
                    };
                    for (part, values) in dealt.iter_mut().zip(values) {
                        part.columns.push((name.clone(), values));
                    }
                }
                dealt.into_iter().map(CustomerBatch::Columns).collect()
            }
        }
    }

    /// Calls `visit` with each of row `row`'s values that the schema knows, by position.
    pub fn for_each_by_position(
        &self,
        schema: &Schema,
        row: usize,
        mut visit: impl FnMut(usize, ValueRef<'_>),
    ) {
        let mut put = |name: &str, value: ValueRef<'_>| {
            if let Some(&position) = schema.positions.get(name) {
                visit(position, value);
            }
        };
        match self {
            CustomerBatch::Rows(rows) => rows[row]
                .features
                .iter()
                .for_each(|(name, value)| put(name, ValueRef::from(value))),
            CustomerBatch::Columns(columns) => columns
                .columns
                .iter()
                .for_each(|(name, column)| put(name, column.get(row))),
        }
    }
}

/// `values` dealt into `parts` vectors by `part_of_row`, in order; values of no part are
/// dropped, and so are values past `part_of_row` (a ragged column: validation reports it
/// on the whole batch before any dealing).
fn deal<T>(values: Vec<T>, part_of_row: &[Option<usize>], parts: usize) -> Vec<Vec<T>> {
    let mut dealt: Vec<Vec<T>> = (0..parts).map(|_| Vec::new()).collect();
    for (value, part) in values.into_iter().zip(part_of_row) {
        if let Some(part) = part {
            dealt[*part].push(value);
        }
    }
    dealt
}

/// A borrowed feature value: what validation reads, whichever form the batch came in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Number(f64),
    Text(&'a str),
    Flag(bool),
    Missing,
}

impl<'a> From<&'a FeatureValue> for ValueRef<'a> {
    fn from(value: &'a FeatureValue) -> Self {
        match value {
            FeatureValue::Number(v) => ValueRef::Number(*v),
            FeatureValue::Text(text) => ValueRef::Text(text),
            FeatureValue::Flag(flag) => ValueRef::Flag(*flag),
            FeatureValue::Missing => ValueRef::Missing,
        }
    }
}

impl ValueRef<'_> {
    pub fn to_owned(self) -> FeatureValue {
        match self {
            ValueRef::Number(v) => FeatureValue::Number(v),
            ValueRef::Text(text) => FeatureValue::Text(text.to_owned()),
            ValueRef::Flag(flag) => FeatureValue::Flag(flag),
            ValueRef::Missing => FeatureValue::Missing,
        }
    }
}

/// What is wrong with one feature of one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureProblem {
    pub feature: String,
    pub message: String,
}

/// Why a row cannot be scored: every offending feature, in schema order, then the
/// features the model does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub problems: Vec<FeatureProblem>,
}

impl RowError {
    /// A row-level failure not tied to one feature.
    pub(crate) fn whole_row(message: impl Into<String>) -> Self {
        RowError {
            problems: vec![FeatureProblem::whole_row(message)],
        }
    }
}

impl FeatureProblem {
    pub(crate) fn whole_row(message: impl Into<String>) -> Self {
        FeatureProblem {
            feature: String::new(),
            message: message.into(),
        }
    }
}

/// Text a caller sent, cut to a length an error message can repeat.
pub fn abbreviated(text: &str) -> String {
    const SHOWN_BYTES: usize = 64;
    if text.len() <= SHOWN_BYTES {
        return text.to_owned();
    }
    let mut end = SHOWN_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if problem.feature.is_empty() {
                f.write_str(&problem.message)?;
            } else {
                write!(f, "feature `{}`: {}", problem.feature, problem.message)?;
            }
        }
        Ok(())
    }
}
