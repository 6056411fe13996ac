//! Customers from tabular data (a CSV dataset's header and text fields), by the model's
//! raw feature names; columns the model does not read are ignored.

use crate::batch::{Customer, FeatureValue};
use crate::schema::{FeatureKind, Schema};

/// Where each of the model's features sits in a table's columns.
#[derive(Debug, Clone)]
pub struct ColumnMapping {
    /// Per schema feature: its name and its column index.
    features: Vec<(String, usize)>,
    id_column: Option<usize>,
    kinds: Vec<FeatureKind>,
}

impl ColumnMapping {
    /// Maps `header` onto the schema; the error lists every feature the header lacks.
    pub fn new(
        schema: &Schema,
        header: &[String],
        id_column: Option<&str>,
    ) -> Result<Self, Vec<String>> {
        let mut missing = Vec::new();
        let mut features = Vec::with_capacity(schema.features.len());
        for feature in &schema.features {
            match header.iter().position(|h| h == &feature.name) {
                Some(column) => features.push((feature.name.clone(), column)),
                None => missing.push(feature.name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(ColumnMapping {
            features,
            id_column: id_column.and_then(|id| header.iter().position(|h| h == id)),
            kinds: schema.features.iter().map(|f| f.kind).collect(),
        })
    }

    /// One customer from one record's fields, typed by feature kind: numbers parsed (an
    /// empty field is a missing value), flags from true/false/yes/no/1/0; anything that
    /// does not parse stays text, so validation names the row and feature it came from.
    pub fn customer<S: AsRef<str>>(&self, fields: &[S]) -> Customer {
        let field = |column: usize| fields.get(column).map_or("", |f| f.as_ref());
        Customer {
            id: self
                .id_column
                .map(|c| field(c).to_owned())
                .unwrap_or_default(),
            features: self
                .features
                .iter()
                .zip(&self.kinds)
                .map(|((name, column), kind)| {
                    (
                        name.clone(),
                        FeatureValue::from_field(*kind, field(*column)),
                    )
                })
                .collect(),
        }
    }
}

impl FeatureValue {
    /// A text field (a CSV's, or an Arrow text column's) read as a feature of `kind`:
    /// numbers parsed (blank is missing), flags from true/false/yes/no/1/0; anything that
    /// does not parse stays text, so validation names the row and feature it came from.
    pub fn from_field(kind: FeatureKind, text: &str) -> FeatureValue {
        let trimmed = text.trim();
        match kind {
            FeatureKind::Text => FeatureValue::Text(text.to_owned()),
            FeatureKind::Number if trimmed.is_empty() => FeatureValue::Missing,
            FeatureKind::Number => trimmed.parse().map_or_else(
                |_| FeatureValue::Text(text.to_owned()),
                FeatureValue::Number,
            ),
            FeatureKind::Bool => match trimmed.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => FeatureValue::Flag(true),
                "false" | "no" | "0" => FeatureValue::Flag(false),
                _ => FeatureValue::Text(text.to_owned()),
            },
        }
    }
}
