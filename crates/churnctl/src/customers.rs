//! Customers in and predictions out: `--set` flags and JSON customers to protobuf, and
//! feature values and reasons to table cells.

use std::io::Read;

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use clap::Args;
use serde_json::{Value, json};

use crate::args::key_value;

/// Customers from `--set` flags or JSON.
#[derive(Debug, Args)]
pub(crate) struct CustomerInput {
    /// One feature, `name=value` (a number, true/false, empty for missing, else text); repeatable.
    #[arg(long = "set", value_parser = key_value, conflicts_with = "customers")]
    pub(crate) features: Vec<(String, String)>,
    /// Customer id when scoring from `--set` flags.
    #[arg(long, default_value = "")]
    pub(crate) customer_id: String,
    /// JSON file with the customers; `-` reads standard input.
    #[arg(long)]
    pub(crate) customers: Option<String>,
}

impl CustomerInput {
    /// The JSON customers: one object, or an array.
    pub(crate) fn read(self) -> anyhow::Result<Value> {
        if self.features.is_empty() {
            let source = self.customers.as_deref().unwrap_or("-");
            return serde_json::from_str(&read_input(source)?)
                .context("customers are not valid JSON");
        }
        let features: serde_json::Map<String, Value> = self
            .features
            .into_iter()
            .map(|(name, value)| (name, flag_value(&value)))
            .collect();
        Ok(json!({"customer_id": self.customer_id, "features": features}))
    }
}

pub(crate) fn value_json(value: Option<&pb::FeatureValue>) -> Value {
    match value.and_then(|v| v.kind.as_ref()) {
        Some(pb::feature_value::Kind::Number(number)) => json!(number),
        Some(pb::feature_value::Kind::Text(text)) => json!(text),
        Some(pb::feature_value::Kind::Flag(flag)) => json!(flag),
        None => Value::Null,
    }
}

/// Reasons as one cell: `feature=value (+0.41); …`.
pub(crate) fn reasons_cell(reasons: &[pb::Reason]) -> Value {
    if reasons.is_empty() {
        return Value::Null;
    }
    json!(reasons_text(reasons))
}

/// `feature=value (+0.123); …`, largest first as the server sends them.
pub(crate) fn reasons_text(reasons: &[pb::Reason]) -> String {
    reasons
        .iter()
        .map(|r| {
            format!(
                "{}={} ({:+.3})",
                r.feature,
                value_json(r.value.as_ref()),
                r.contribution
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

pub(crate) fn read_input(source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        text = std::fs::read_to_string(source).with_context(|| format!("cannot read {source}"))?;
    }
    Ok(text)
}

/// A `--set` value: a number, true/false, empty for missing, else text.
pub(crate) fn flag_value(text: &str) -> Value {
    if text.is_empty() {
        return Value::Null;
    }
    if let Ok(flag) = text.parse::<bool>() {
        return json!(flag);
    }
    text.parse::<f64>()
        .map_or_else(|_| json!(text), |number| json!(number))
}

pub(crate) fn customer(value: &Value) -> anyhow::Result<pb::Customer> {
    let Value::Object(object) = value else {
        bail!("expected a JSON object with customer_id and features")
    };
    let customer_id = match object.get("customer_id") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(id)) => id.clone(),
        Some(other) => bail!("customer_id must be a string, got {other}"),
    };
    let features = match object.get("features") {
        Some(Value::Object(features)) => features,
        _ => bail!("features must be a JSON object of feature name to value"),
    };
    let features = features
        .iter()
        .map(|(name, value)| {
            let kind = match value {
                Value::Null => None,
                Value::Bool(flag) => Some(pb::feature_value::Kind::Flag(*flag)),
                Value::Number(number) => Some(pb::feature_value::Kind::Number(
                    number
                        .as_f64()
                        .with_context(|| format!("feature {name}: {number} is not a double"))?,
                )),
                Value::String(text) => Some(pb::feature_value::Kind::Text(text.clone())),
                other => bail!(
                    "feature {name}: expected a number, text, true/false or null, got {other}"
                ),
            };
            Ok((name.clone(), pb::FeatureValue { kind }))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(pb::Customer {
        customer_id,
        features,
    })
}
