//! What a model's own readings are checked against while it loads: a row every schema
//! accepts, and the logistic link from a margin to a probability.

use crate::batch::{Customer, FeatureValue};
use crate::schema::{FeatureKind, Schema};

/// A row every schema accepts: zero, false, or the first known category.
pub(super) fn synthetic_customer(schema: &Schema) -> Customer {
    let features = schema
        .features
        .iter()
        .map(|feature| {
            let value = match feature.kind {
                FeatureKind::Number => FeatureValue::Number(0.0),
                FeatureKind::Bool => FeatureValue::Flag(false),
                FeatureKind::Text => FeatureValue::Text(
                    feature
                        .categories
                        .as_ref()
                        .and_then(|c| c.values.first())
                        .cloned()
                        .unwrap_or_default(),
                ),
            };
            (feature.name.clone(), value)
        })
        .collect();
    Customer {
        id: "smoke-test".to_owned(),
        features,
    }
}

pub(super) fn sigmoid(margin: f64) -> f64 {
    1.0 / (1.0 + (-margin).exp())
}
