//! `evaluate`, `evaluations`, `compare` and `threshold`: versions measured on labelled
//! data, and the tables that show it.

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use clap::Args;
use serde_json::{Value, json};

use crate::args::{Campaign, Target};
use crate::output::{Format, Table, line, utc_of};
use crate::reference::ModelArg;
use crate::session::{Session, status};

pub(crate) async fn evaluate(
    session: &Session,
    target: Target,
    dataset: String,
    (threshold, campaign): (f64, Campaign),
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::EvaluateRequest {
        model: target.model_ref()?,
        dataset,
        rows: Vec::new(),
        threshold,
        profit: campaign.to_proto()?,
    };
    let response = session
        .scoring()
        .evaluate(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    print_evaluation(&response, format)?;

    Ok(())
}

pub(crate) async fn evaluations(
    session: &Session,
    model: ModelArg,
    version: Option<u32>,
    format: Format,
) -> anyhow::Result<()> {
    let model = model.with_flags(version, None)?;
    if model.alias.is_some() {
        bail!("{model}: evaluations are listed by version number, not alias");
    }
    let request = pb::ListEvaluationsRequest {
        name: model.name.clone(),
        version: model.version.unwrap_or(0),
    };
    let response = session
        .registry()
        .list_evaluations(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let mut table = Table::new(&[
        "EVALUATION",
        "CREATED",
        "MODEL",
        "VERSION",
        "DATASET",
        "THRESHOLD",
        "ROWS",
        "REJECTED",
        "ROC AUC",
        "PR AUC",
        "LOG LOSS",
        "BRIER",
        "F1",
        "EMPC",
    ]);
    for e in &response.evaluations {
        let m = e.metrics.clone().unwrap_or_default();
        let served_by = e.served_by.clone().unwrap_or_default();
        table.row(vec![
            json!(e.evaluation_id),
            json!(utc_of(e.created_at.as_ref())),
            json!(served_by.name),
            json!(served_by.version),
            json!(e.dataset),
            json!(e.threshold),
            json!(m.rows),
            json!(e.rejected_rows),
            json!(m.roc_auc),
            json!(m.pr_auc),
            json!(m.log_loss),
            json!(m.brier),
            json!(m.f1),
            json!(m.profit.as_ref().map(|p| p.empc)),
        ]);
    }
    table.print(format);

    Ok(())
}

#[derive(Debug, Args)]
pub(crate) struct Compare {
    #[arg(value_name = "MODEL")]
    pub(crate) model: ModelArg,
    #[arg(long)]
    pub(crate) dataset: String,
    /// Champion and challenger versions, `A,B`.
    #[arg(long, value_delimiter = ',', conflicts_with = "aliases")]
    pub(crate) versions: Vec<u32>,
    /// Champion and challenger aliases, `A,B`.
    #[arg(long, value_delimiter = ',', default_value = "production,challenger")]
    pub(crate) aliases: Vec<String>,
    #[command(flatten)]
    pub(crate) campaign: Campaign,
}

impl Compare {
    fn models(&self) -> anyhow::Result<(Option<pb::ModelRef>, Option<pb::ModelRef>)> {
        let name = self.model.name_only()?;
        // clap's num_args counts `1,2` as one value: the pair is checked here.
        if !self.versions.is_empty() && self.versions.len() != 2 {
            bail!("--versions takes two versions, champion and challenger: `--versions 1,2`");
        }
        if self.aliases.len() != 2 {
            bail!(
                "--aliases takes two aliases, champion and challenger: `--aliases production,challenger`"
            );
        }
        let by = |i: usize| {
            Some(pb::ModelRef {
                name: name.clone(),
                version: self.versions.get(i).copied().unwrap_or(0),
                alias: if self.versions.is_empty() {
                    self.aliases[i].clone()
                } else {
                    String::new()
                },
            })
        };
        Ok((by(0), by(1)))
    }
}

pub(crate) async fn compare(
    session: &Session,
    compare: Compare,
    format: Format,
) -> anyhow::Result<()> {
    let (champion, challenger) = compare.models()?;
    let request = pb::CompareRequest {
        champion,
        challenger,
        dataset: compare.dataset,
        rows: Vec::new(),
        threshold: 0.0,
        profit: compare.campaign.to_proto()?,
    };
    let response = session
        .scoring()
        .compare(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    print_comparison(&response, format)?;

    Ok(())
}

pub(crate) async fn threshold(
    session: &Session,
    target: Target,
    dataset: String,
    (objective, campaign): (String, Campaign),
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::SuggestThresholdRequest {
        model: target.model_ref()?,
        dataset,
        rows: Vec::new(),
        objective: objective.clone(),
        profit: campaign.to_proto()?,
    };
    let response = session
        .scoring()
        .suggest_threshold(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let served_by = response.served_by.clone().unwrap_or_default();
    let mut table = Table::new(&[
        "MODEL",
        "VERSION",
        "OBJECTIVE",
        "THRESHOLD",
        "PRECISION",
        "RECALL",
        "F1",
        "FLAGGED",
        "ROWS",
    ]);
    table.row(vec![
        json!(served_by.name),
        json!(served_by.version),
        json!(objective),
        json!(response.threshold),
        json!(response.precision),
        json!(response.recall),
        json!(response.f1),
        json!(response.flagged),
        json!(response.rows),
    ]);
    table.print(format);

    Ok(())
}

/// The scalar metrics as (name, value) rows, in the order tables print them.
fn metric_rows(metrics: &pb::Metrics, rejected: u64) -> Vec<(&'static str, Value)> {
    let confusion = metrics.confusion.unwrap_or_default();
    vec![
        ("rows", json!(metrics.rows)),
        ("rejected rows", json!(rejected)),
        ("positives", json!(metrics.positives)),
        ("roc auc", json!(metrics.roc_auc)),
        ("pr auc", json!(metrics.pr_auc)),
        ("log loss", json!(metrics.log_loss)),
        ("brier", json!(metrics.brier)),
        ("accuracy", json!(metrics.accuracy)),
        ("precision", json!(metrics.precision)),
        ("recall", json!(metrics.recall)),
        ("f1", json!(metrics.f1)),
        ("true positives", json!(confusion.tp)),
        ("false positives", json!(confusion.fp)),
        ("true negatives", json!(confusion.tn)),
        ("false negatives", json!(confusion.r#fn)),
        ("empc", json!(metrics.profit.as_ref().map(|p| p.empc))),
        (
            "empc fraction",
            json!(metrics.profit.as_ref().map(|p| p.empc_fraction)),
        ),
        ("mpc", json!(metrics.profit.as_ref().map(|p| p.mpc))),
        (
            "mpc fraction",
            json!(metrics.profit.as_ref().map(|p| p.mpc_fraction)),
        ),
    ]
}

fn print_evaluation(response: &pb::EvaluateResponse, format: Format) -> anyhow::Result<()> {
    let metrics = response
        .metrics
        .clone()
        .context("the server sent no metrics")?;
    let served_by = response.served_by.clone().unwrap_or_default();
    if format == Format::Json {
        let mut details: serde_json::Map<String, Value> =
            metric_rows(&metrics, response.rejected_rows)
                .into_iter()
                .map(|(name, value)| (name.replace(' ', "_"), value))
                .collect();
        details.insert("model".to_owned(), json!(served_by.name));
        details.insert("version".to_owned(), json!(served_by.version));
        details.insert("evaluation_id".to_owned(), json!(response.evaluation_id));
        details.insert(
            "lift".to_owned(),
            json!(metrics.lift.iter().map(|l| json!({"decile": l.decile, "churn_rate": l.churn_rate, "lift": l.lift, "cumulative_capture": l.cumulative_capture})).collect::<Vec<_>>()),
        );
        // JSON has no infinity: the threshold +inf of the curves' end point becomes null.
        let profit = metrics.profit.clone().unwrap_or_default();
        let parameters = profit.parameters.unwrap_or_default();
        details.insert(
            "profit_parameters".to_owned(),
            json!({"clv": parameters.clv, "incentive_cost": parameters.incentive_cost,
                   "contact_cost": parameters.contact_cost, "acceptance_alpha": parameters.acceptance_alpha,
                   "acceptance_beta": parameters.acceptance_beta}),
        );
        for (key, curve) in [
            ("roc_curve", &metrics.roc_curve),
            ("pr_curve", &metrics.pr_curve),
            ("profit_curve", &profit.profit_curve),
        ] {
            details.insert(
                key.to_owned(),
                json!(
                    curve
                        .iter()
                        .map(|p| json!({"x": p.x, "y": p.y, "threshold": p.threshold}))
                        .collect::<Vec<_>>()
                ),
            );
        }
        line(&Value::Object(details).to_string());
        return Ok(());
    }
    line(&format!(
        "{} version {} · evaluation {}",
        served_by.name, served_by.version, response.evaluation_id
    ));
    let mut table = Table::new(&["METRIC", "VALUE"]);
    for (name, value) in metric_rows(&metrics, response.rejected_rows) {
        table.row(vec![json!(name), value]);
    }
    table.print(format);
    for rejection in &response.rejections {
        line(&format!("rejected: {}", rejection.message));
    }
    line("");
    let mut lift = Table::new(&["DECILE", "CHURN RATE", "LIFT", "CUMULATIVE CAPTURE"]);
    for l in &metrics.lift {
        lift.row(vec![
            json!(l.decile),
            json!(l.churn_rate),
            json!(l.lift),
            json!(l.cumulative_capture),
        ]);
    }
    lift.print(format);
    line("");
    let mut calibration = Table::new(&["BIN", "MEAN PREDICTED", "OBSERVED RATE", "COUNT"]);
    for c in &metrics.calibration {
        calibration.row(vec![
            json!(format!("{:.1}-{:.1}", c.lower, c.upper)),
            json!(c.mean_predicted),
            json!(c.observed_rate),
            json!(c.count),
        ]);
    }
    calibration.print(format);
    Ok(())
}

fn print_comparison(response: &pb::CompareResponse, format: Format) -> anyhow::Result<()> {
    let (champion, challenger) = (
        response
            .champion
            .clone()
            .context("no champion evaluation")?,
        response
            .challenger
            .clone()
            .context("no challenger evaluation")?,
    );
    let label = |e: &pb::EvaluateResponse| {
        let s = e.served_by.clone().unwrap_or_default();
        format!("{} v{}", s.name, s.version)
    };
    let difference = response.roc_auc_difference.unwrap_or_default();
    let a = metric_rows(
        &champion.metrics.clone().unwrap_or_default(),
        champion.rejected_rows,
    );
    let b = metric_rows(
        &challenger.metrics.clone().unwrap_or_default(),
        challenger.rejected_rows,
    );
    let mut table = Table::new(&["METRIC", "CHAMPION", "CHALLENGER", "DIFFERENCE"]);
    for ((name, a), (_, b)) in a.into_iter().zip(b) {
        let delta = match (a.as_i64(), b.as_i64(), a.as_f64(), b.as_f64()) {
            (Some(x), Some(y), _, _) => json!(y - x),
            (_, _, Some(x), Some(y)) => json!(y - x),
            _ => Value::Null,
        };
        table.row(vec![json!(name), a, b, delta]);
    }
    if format == Format::Json {
        table.print(format);
        line(&json!({
            "champion": label(&champion), "challenger": label(&challenger),
            "roc_auc_difference": difference.difference, "standard_error": difference.standard_error,
            "ci_lower": difference.lower, "ci_upper": difference.upper, "p_value": difference.p_value,
            "paired_rows": response.paired_rows, "empc_difference": response.empc_difference,
        }).to_string());
        return Ok(());
    }
    line(&format!(
        "champion {} · challenger {}",
        label(&champion),
        label(&challenger)
    ));
    table.print(format);
    line(&format!(
        "ROC AUC difference (challenger - champion) {:+.4}, 95% CI [{:+.4}, {:+.4}], DeLong p = {:.3} over {} paired rows",
        difference.difference,
        difference.lower,
        difference.upper,
        difference.p_value,
        response.paired_rows
    ));
    let profit = |e: &pb::EvaluateResponse| e.metrics.clone().unwrap_or_default().profit;
    if let (Some(a), Some(b)) = (profit(&champion), profit(&challenger)) {
        let p = a.parameters.unwrap_or_default();
        line(&format!(
            "EMPC difference (challenger - champion) {:+.4} per customer; the champion would contact {:.1}% of customers, the challenger {:.1}% (clv {}, incentive {}, contact {}, acceptance Beta({}, {}))",
            response.empc_difference,
            100.0 * a.empc_fraction,
            100.0 * b.empc_fraction,
            p.clv,
            p.incentive_cost,
            p.contact_cost,
            p.acceptance_alpha,
            p.acceptance_beta
        ));
    }
    Ok(())
}
