//! Protobuf requests to domain values.

use churn_api::v1 as pb;
use churn_engine::{Customer, FeatureValue};

use crate::catalog::{ModelSelector, PRODUCTION_ALIAS, VersionSelector};
use crate::error::ServiceError;

pub fn model_selector(model: Option<pb::ModelRef>) -> Result<ModelSelector, ServiceError> {
    let model = model.unwrap_or_default();
    let version = match (model.version, model.alias.is_empty()) {
        (0, true) => VersionSelector::Alias(PRODUCTION_ALIAS.to_owned()),
        (0, false) => VersionSelector::Alias(model.alias),
        (version, true) => VersionSelector::Number(version),
        (version, false) => {
            return Err(ServiceError::InvalidRequest(format!(
                "model: version {version} and alias {:?} are both set; set one of them",
                model.alias
            )));
        }
    };
    Ok(ModelSelector {
        name: model.name,
        version,
    })
}

pub fn customer(customer: pb::Customer) -> Customer {
    Customer {
        id: customer.customer_id,
        features: customer
            .features
            .into_iter()
            .map(|(name, value)| (name, feature_value(value)))
            .collect(),
    }
}

pub fn customers(customers: Vec<pb::Customer>) -> Vec<Customer> {
    customers.into_iter().map(customer).collect()
}

fn feature_value(value: pb::FeatureValue) -> FeatureValue {
    match value.kind {
        Some(pb::feature_value::Kind::Number(number)) => FeatureValue::Number(number),
        Some(pb::feature_value::Kind::Text(text)) => FeatureValue::Text(text),
        Some(pb::feature_value::Kind::Flag(flag)) => FeatureValue::Flag(flag),
        None => FeatureValue::Missing,
    }
}
