//! `explain` (one customer's attributions) and `importance` (each feature's global
//! importance).

use churn_api::v1 as pb;
use clap::Args;
use serde_json::json;

use crate::args::Target;
use crate::customers::{CustomerInput, customer, value_json};
use crate::output::{Format, Table, line};
use crate::session::{Session, status};

#[derive(Debug, Args)]
pub(crate) struct Explain {
    #[command(flatten)]
    pub(crate) target: Target,
    #[command(flatten)]
    pub(crate) input: CustomerInput,
}

#[derive(Debug, Args)]
pub(crate) struct Importance {
    #[command(flatten)]
    pub(crate) target: Target,
    /// How importance is measured; default: the server picks (native for trees, else permutation).
    #[arg(long, value_enum)]
    pub(crate) method: Option<ImportanceMethod>,
    /// A registered labelled dataset; default: the version's reference dataset.
    #[arg(long, default_value = "")]
    pub(crate) dataset: String,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ImportanceMethod {
    /// Split counts of a tree ensemble.
    Native,
    /// Drop in ROC AUC when a feature is shuffled.
    Permutation,
    /// Mean absolute attribution.
    MeanAbsShap,
}

pub(crate) async fn explain_customer(
    session: &Session,
    explain: Explain,
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::ExplainRequest {
        model: explain.target.model_ref()?,
        customer: Some(customer(&explain.input.read()?)?),
    };
    let response = session
        .scoring()
        .explain(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut attributions = response.attributions.clone();
    attributions.sort_by(|a, b| b.contribution.abs().total_cmp(&a.contribution.abs()));
    if format == Format::Json {
        let served_by = response.served_by.as_ref();
        let details = json!({
            "model": served_by.map(|s| &s.name), "version": served_by.map(|s| s.version),
            "method": response.method, "base_value": response.base_value,
            "output_value": response.output_value, "max_abs_error": response.max_abs_error,
            "attributions": attributions.iter().map(|a| json!({
                "feature": a.feature, "value": value_json(a.value.as_ref()), "contribution": a.contribution,
            })).collect::<Vec<_>>(),
        });
        line(&details.to_string());
        return Ok(());
    }
    let probability = 1.0 / (1.0 + (-response.output_value).exp());
    line(&format!(
        "{} (±{:.1e}): base {:+.4} + contributions = {:+.4} log-odds, churn probability {probability:.4}",
        response.method, response.max_abs_error, response.base_value, response.output_value
    ));
    let mut table = Table::new(&["FEATURE", "VALUE", "CONTRIBUTION"]);
    for attribution in &attributions {
        table.row(vec![
            json!(attribution.feature),
            value_json(attribution.value.as_ref()),
            json!(attribution.contribution),
        ]);
    }
    table.print(format);
    Ok(())
}

pub(crate) async fn importance(
    session: &Session,
    importance: Importance,
    format: Format,
) -> anyhow::Result<()> {
    let method = match importance.method {
        None => pb::ImportanceMethod::Unspecified,
        Some(ImportanceMethod::Native) => pb::ImportanceMethod::ModelNative,
        Some(ImportanceMethod::Permutation) => pb::ImportanceMethod::Permutation,
        Some(ImportanceMethod::MeanAbsShap) => pb::ImportanceMethod::MeanAbsShap,
    };
    let request = pb::FeatureImportanceRequest {
        model: importance.target.model_ref()?,
        method: method.into(),
        dataset: importance.dataset,
        rows: Vec::new(),
    };
    let response = session
        .scoring()
        .feature_importance(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut table = Table::new(&["FEATURE", "IMPORTANCE", "STDDEV", "METHOD"]);
    for score in &response.features {
        table.row(vec![
            json!(score.feature),
            json!(score.importance),
            json!(score.stddev),
            json!(response.method().as_str_name()),
        ]);
    }
    table.print(format);

    Ok(())
}
