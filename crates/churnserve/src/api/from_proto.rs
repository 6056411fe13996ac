//! Protobuf requests to domain values.

use crate::domain::{ColumnValues, Customer, CustomerBatch, CustomerColumns, FeatureValue, Schema};
use churn_api::v1 as pb;

use crate::domain::ProfitParameters;
use crate::domain::analysis::evaluating::{Gate, LabelledData, Terms};
use crate::domain::analysis::explaining::ImportanceMethod;
use crate::domain::error::ServiceError;
use crate::domain::monitoring::drift::DriftRequest;
use crate::domain::monitoring::experiments::ExperimentRequest;
use crate::domain::monitoring::performance::{CohortPeriod, PerformanceRequest};
use crate::domain::serving::catalog::Registration;
use crate::domain::serving::scoring::{BatchRequest, ScoreRequest};
use crate::domain::serving::served::{ModelSelector, alias_or_production};
use crate::domain::serving::streams::StreamMessage;
use crate::domain::{NewDataset, NewTrafficSplit, OutcomeRecord, ShadowConfig, TrafficArm};

pub fn model_selector(model: Option<pb::ModelRef>) -> Result<ModelSelector, ServiceError> {
    let model = model.unwrap_or_default();
    match (model.version, model.alias.is_empty()) {
        (0, _) => Ok(ModelSelector::by_alias(model.name, &model.alias)),
        (version, true) => Ok(ModelSelector::by_number(model.name, version)),
        (version, false) => Err(ServiceError::InvalidRequest(format!(
            "model: version {version} and alias {:?} are both set; set one of them",
            model.alias
        ))),
    }
}

pub fn score_request(request: pb::ScoreRequest) -> Result<ScoreRequest, ServiceError> {
    Ok(ScoreRequest {
        model: model_selector(request.model)?,
        customer: customer(required_customer(request.customer)?),
        top_reasons: request.top_reasons as usize,
    })
}

pub fn batch_request(request: pb::ScoreBatchRequest) -> Result<BatchRequest, ServiceError> {
    Ok(BatchRequest {
        model: model_selector(request.model)?,
        customers: customer_batch(request.customers, request.columns)?,
        top_reasons: request.top_reasons as usize,
    })
}

pub fn required_customer(customer: Option<pb::Customer>) -> Result<pb::Customer, ServiceError> {
    customer.ok_or_else(|| {
        ServiceError::InvalidRequest("customer: required field is absent".to_owned())
    })
}

impl StreamMessage for pb::ScoreBatchRequest {
    fn model(&self) -> Result<ModelSelector, ServiceError> {
        model_selector(self.model.clone())
    }

    fn first_row(&self) -> u32 {
        self.first_row
    }

    fn rows(&self) -> u64 {
        let columns = self.columns.as_ref().map_or(0, |c| c.customer_ids.len());
        (self.customers.len() + columns) as u64
    }

    fn top_reasons(&self) -> usize {
        self.top_reasons as usize
    }

    fn into_customers(self, _schema: &Schema) -> Result<CustomerBatch, ServiceError> {
        customer_batch(self.customers, self.columns)
    }
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

/// A batch's customers, from rows or from columns (one of them).
pub fn customer_batch(
    customers: Vec<pb::Customer>,
    columns: Option<pb::CustomerColumns>,
) -> Result<CustomerBatch, ServiceError> {
    let Some(columns) = columns else {
        return Ok(CustomerBatch::Rows(
            customers.into_iter().map(customer).collect(),
        ));
    };
    if !customers.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "columns: send the customers as rows or as columns, not both".to_owned(),
        ));
    }
    let columns = CustomerColumns {
        ids: columns.customer_ids,
        columns: columns
            .features
            .into_iter()
            .map(|column| (column.name, column_values(column.values)))
            .collect(),
    };
    if let Some((name, values)) = columns.ragged_column() {
        return Err(ServiceError::InvalidRequest(format!(
            "columns: feature `{name}` has {values} values for {} customer_ids; expected one per customer",
            columns.len()
        )));
    }
    Ok(CustomerBatch::Columns(columns))
}

fn column_values(values: Option<pb::feature_column::Values>) -> ColumnValues {
    use pb::feature_column::Values;
    match values {
        Some(Values::Numbers(numbers)) => ColumnValues::Numbers(numbers.values),
        Some(Values::Texts(texts)) => ColumnValues::Texts(texts.values),
        Some(Values::Flags(flags)) => ColumnValues::Flags(flags.values),
        Some(Values::Mixed(mixed)) => {
            ColumnValues::Values(mixed.values.into_iter().map(feature_value).collect())
        }
        None => ColumnValues::Values(Vec::new()),
    }
}

fn feature_value(value: pb::FeatureValue) -> FeatureValue {
    match value.kind {
        Some(pb::feature_value::Kind::Number(number)) => FeatureValue::Number(number),
        Some(pb::feature_value::Kind::Text(text)) => FeatureValue::Text(text),
        Some(pb::feature_value::Kind::Flag(flag)) => FeatureValue::Flag(flag),
        None => FeatureValue::Missing,
    }
}

pub fn shadow(request: pb::SetShadowRequest) -> ShadowConfig {
    ShadowConfig {
        name: request.name,
        alias: request.alias,
        shadow_version: request.version,
        record: request.record,
    }
}

/// The last second of 9999-12-31, the end of the range RFC 3339 and every client can write.
const LAST_TIMESTAMP_SECOND: i64 = 253_402_300_799;

/// A timestamp in milliseconds, checked to be within 1970..=9999.
fn millis(field: &str, timestamp: &prost_types::Timestamp) -> Result<i64, ServiceError> {
    if !(0..=LAST_TIMESTAMP_SECOND).contains(&timestamp.seconds)
        || !(0..1_000_000_000).contains(&timestamp.nanos)
    {
        return Err(ServiceError::InvalidRequest(format!(
            "{field}: {}s {}ns is not a time between 1970-01-01 and 9999-12-31 (UTC)",
            timestamp.seconds, timestamp.nanos
        )));
    }
    Ok(timestamp.seconds * 1000 + i64::from(timestamp.nanos / 1_000_000))
}

/// Every outcome, or the first invalid one's field and what was expected.
pub fn outcomes(outcomes: Vec<pb::Outcome>) -> Result<Vec<OutcomeRecord>, ServiceError> {
    outcomes
        .into_iter()
        .enumerate()
        .map(|(row, outcome)| {
            if outcome.customer_id.is_empty() {
                return Err(ServiceError::InvalidRequest(format!(
                    "outcomes[{row}].customer_id: empty; expected the id the customer was scored with"
                )));
            }
            let observed_at = outcome.observed_at.as_ref().ok_or_else(|| {
                ServiceError::InvalidRequest(format!(
                    "outcomes[{row}].observed_at: missing; expected when the outcome was observed"
                ))
            })?;
            Ok(OutcomeRecord {
                observed_at_millis: millis(&format!("outcomes[{row}].observed_at"), observed_at)?,
                customer_id: outcome.customer_id,
                churned: outcome.churned,
            })
        })
        .collect()
}

/// `since` unset: the start of the log; `until` unset: `now_millis`.
pub fn performance_request(
    request: pb::RealizedPerformanceRequest,
    now_millis: i64,
) -> Result<PerformanceRequest, ServiceError> {
    let period = match pb::CohortPeriod::try_from(request.cohort) {
        Ok(pb::CohortPeriod::Unspecified | pb::CohortPeriod::Week) => CohortPeriod::Week,
        Ok(pb::CohortPeriod::Day) => CohortPeriod::Day,
        Ok(pb::CohortPeriod::Month) => CohortPeriod::Month,
        Err(_) => {
            return Err(ServiceError::InvalidRequest(format!(
                "cohort: {} is not a CohortPeriod; expected DAY (1), WEEK (2) or MONTH (3)",
                request.cohort
            )));
        }
    };
    let (since_millis, until_millis) =
        time_range(request.since.as_ref(), request.until.as_ref(), now_millis)?;
    Ok(PerformanceRequest {
        selector: model_selector(request.model)?,
        since_millis,
        until_millis,
        period,
        horizon_days: request.horizon_days,
    })
}

/// `None`: the server picks.
pub fn importance_method(method: i32) -> Result<Option<ImportanceMethod>, ServiceError> {
    match pb::ImportanceMethod::try_from(method) {
        Ok(pb::ImportanceMethod::Unspecified) => Ok(None),
        Ok(pb::ImportanceMethod::ModelNative) => Ok(Some(ImportanceMethod::ModelNative)),
        Ok(pb::ImportanceMethod::Permutation) => Ok(Some(ImportanceMethod::Permutation)),
        Ok(pb::ImportanceMethod::MeanAbsShap) => Ok(Some(ImportanceMethod::MeanAbsShap)),
        Err(_) => Err(ServiceError::InvalidRequest(format!(
            "method: {method} is not an ImportanceMethod; expected MODEL_NATIVE (1), PERMUTATION (2) or MEAN_ABS_SHAP (3)"
        ))),
    }
}

/// Labelled rows inline or a dataset by name; `None` when neither is given.
pub fn labelled_data(
    dataset: String,
    rows: Vec<pb::LabeledCustomer>,
) -> Result<Option<LabelledData>, ServiceError> {
    match (dataset.is_empty(), rows.is_empty()) {
        (false, false) => Err(ServiceError::InvalidRequest(
            "dataset and rows are both set; send one of them".to_owned(),
        )),
        (false, true) => Ok(Some(LabelledData::Dataset(dataset))),
        (true, true) => Ok(None),
        (true, false) => rows
            .into_iter()
            .enumerate()
            .map(|(row, labeled)| match labeled.customer {
                Some(c) => Ok((customer(c), labeled.churned)),
                None => Err(ServiceError::InvalidRequest(format!(
                    "rows[{row}].customer: required field is absent"
                ))),
            })
            .collect::<Result<_, _>>()
            .map(|rows| Some(LabelledData::Inline(rows))),
    }
}

/// Labelled data an evaluation cannot do without.
pub fn required_labelled_data(
    dataset: String,
    rows: Vec<pb::LabeledCustomer>,
) -> Result<LabelledData, ServiceError> {
    labelled_data(dataset, rows)?.ok_or_else(|| {
        ServiceError::InvalidRequest(
            "dataset or rows: name a registered labelled dataset or send labelled rows".to_owned(),
        )
    })
}

/// `None`: the version's own threshold.
pub fn threshold(threshold: f64) -> Result<Option<f64>, ServiceError> {
    match threshold {
        0.0 => Ok(None),
        t if t > 0.0 && t < 1.0 => Ok(Some(t)),
        t => Err(ServiceError::InvalidRequest(format!(
            "threshold: {t} is not within (0, 1); send 0 for the version's own"
        ))),
    }
}

pub fn gate(gate: Option<pb::PromotionGate>) -> Result<Option<Gate>, ServiceError> {
    gate.map(|g| {
        Ok(Gate {
            dataset: g.dataset,
            min_roc_auc: g.min_roc_auc,
            max_roc_auc_drop: g.max_roc_auc_drop,
            max_empc_drop: g.max_empc_drop,
            campaign: campaign(g.profit)?,
        })
    })
    .transpose()
}

/// A campaign's parameters, each left 0 (or the message unset) at its default.
pub fn campaign(profit: Option<pb::ProfitParameters>) -> Result<ProfitParameters, ServiceError> {
    let profit = profit.unwrap_or_default();
    let campaign = ProfitParameters {
        clv: profit.clv,
        incentive_cost: profit.incentive_cost,
        contact_cost: profit.contact_cost,
        acceptance_alpha: profit.acceptance_alpha,
        acceptance_beta: profit.acceptance_beta,
    }
    .or_defaults();
    campaign.validate()?;
    Ok(campaign)
}

/// What an evaluation request decides at and prices.
pub fn terms(threshold: f64, profit: Option<pb::ProfitParameters>) -> Result<Terms, ServiceError> {
    Ok(Terms {
        threshold: self::threshold(threshold)?,
        campaign: campaign(profit)?,
    })
}

pub fn registration(metadata: pb::RegisterModelMetadata) -> Result<Registration, ServiceError> {
    let invalid =
        |message: String| Err(ServiceError::InvalidRequest(format!("metadata: {message}")));
    if metadata.name.is_empty() {
        return invalid("name is required".to_owned());
    }
    let threshold = match metadata.threshold {
        0.0 => None,
        t if t > 0.0 && t < 1.0 => Some(t),
        t => {
            return invalid(format!(
                "threshold {t} must be within (0, 1), or 0 for the model's own"
            ));
        }
    };
    let risk_band_cuts = match metadata.risk_band_cuts.as_slice() {
        [] => None,
        [medium, high] => Some([*medium, *high]),
        cuts => {
            return invalid(format!(
                "risk_band_cuts has {} values; expected two (medium and high) or none",
                cuts.len()
            ));
        }
    };
    Ok(Registration {
        name: metadata.name,
        description: metadata.description,
        tags: metadata.tags.into_iter().collect(),
        feature_names: metadata.feature_names,
        positive_class: Some(metadata.positive_class).filter(|p| !p.is_empty()),
        threshold,
        risk_band_cuts,
        reference_dataset: metadata.reference_dataset,
        aliases: metadata.aliases,
    })
}

pub fn dataset(metadata: pb::DatasetMetadata) -> NewDataset {
    NewDataset {
        name: metadata.name,
        label_column: metadata.label_column,
        positive_label: metadata.positive_label,
        description: metadata.description,
    }
}

/// A split to set; an empty alias means `production`.
pub fn traffic_split(request: pb::SetTrafficSplitRequest) -> NewTrafficSplit {
    NewTrafficSplit {
        name: request.name,
        alias: alias_or_production(&request.alias).to_owned(),
        arms: request
            .arms
            .into_iter()
            .map(|arm| TrafficArm {
                version: arm.version,
                weight: arm.weight,
            })
            .collect(),
        salt: request.salt,
    }
}

/// `since` and `until` unset: the split's start, and now.
pub fn experiment_request(
    request: pb::ExperimentReportRequest,
) -> Result<ExperimentRequest, ServiceError> {
    Ok(ExperimentRequest {
        name: request.name,
        alias: request.alias,
        since_millis: request
            .since
            .as_ref()
            .map(|t| millis("since", t))
            .transpose()?,
        until_millis: request
            .until
            .as_ref()
            .map(|t| millis("until", t))
            .transpose()?,
        horizon_days: request.horizon_days,
    })
}

/// `since` unset: the first count; `until` unset: `now_millis`.
pub fn drift_request(
    request: pb::DriftReportRequest,
    now_millis: i64,
) -> Result<DriftRequest, ServiceError> {
    let (since_millis, until_millis) =
        time_range(request.since.as_ref(), request.until.as_ref(), now_millis)?;
    Ok(DriftRequest {
        selector: model_selector(request.model)?,
        since_millis,
        until_millis,
    })
}

/// `since` and `until` in milliseconds; unset: the epoch, and `now_millis`.
fn time_range(
    since: Option<&prost_types::Timestamp>,
    until: Option<&prost_types::Timestamp>,
    now_millis: i64,
) -> Result<(i64, i64), ServiceError> {
    Ok((
        since.map_or(Ok(0), |t| millis("since", t))?,
        until.map_or(Ok(now_millis), |t| millis("until", t))?,
    ))
}
