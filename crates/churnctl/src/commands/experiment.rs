//! `churnctl experiment`: split an alias between versions, each customer always answered
//! by the same one, read how each arm's customers turned out, and end the split.

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::commands::outcomes::optional_timestamp;
use crate::output::{Format, Table, line, utc_of};
use crate::reference::ModelArg;
use crate::session::{Session, status};

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Split an alias between versions: `experiment start NAME@ALIAS --arm 1=50 --arm 2=50`.
    /// The first arm is the baseline. Run it again with the same arms to change only the
    /// weights (the experiment goes on); other arms or another salt start a new one.
    Start {
        /// NAME or NAME@ALIAS (default alias `production`).
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        /// VERSION=WEIGHT, in order; at least one.
        #[arg(long = "arm", value_name = "VERSION=WEIGHT", required = true)]
        arms: Vec<String>,
        /// What customer ids are hashed with; default: kept when only the weights change,
        /// else picked by the server.
        #[arg(long, default_value = "")]
        salt: String,
    },
    /// Each arm's customers, outcomes and realized metrics, and each arm against the first.
    Show {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        /// Customers first scored through the split at or after this (RFC 3339 or a date);
        /// default: its start.
        #[arg(long)]
        since: Option<String>,
        /// ... and before this; default: now (or its end).
        #[arg(long)]
        until: Option<String>,
        /// Days after a customer's first prediction an outcome still labels them; default 90.
        #[arg(long, default_value_t = 0)]
        horizon_days: u32,
    },
    /// End the split: the alias points at one version again (default: the first arm).
    /// Its report stays readable with `experiment show`.
    Stop {
        #[arg(value_name = "MODEL")]
        model: ModelArg,
        /// The version the alias keeps.
        #[arg(long)]
        keep: Option<u32>,
    },
}

/// The model name and alias a command means.
fn split_alias(model: &ModelArg) -> anyhow::Result<(String, String)> {
    if model.version.is_some() {
        bail!("{model}: an experiment splits an alias; name it as NAME@ALIAS");
    }
    Ok((
        model.name.clone(),
        model
            .alias
            .clone()
            .unwrap_or_else(|| "production".to_owned()),
    ))
}

fn arm(text: &str) -> anyhow::Result<pb::TrafficArm> {
    let (version, weight) = text
        .split_once('=')
        .with_context(|| format!("--arm {text}: expected VERSION=WEIGHT, e.g. 2=50"))?;
    Ok(pb::TrafficArm {
        version: version
            .trim()
            .parse()
            .with_context(|| format!("--arm {text}: the version is not a whole number"))?,
        weight: weight
            .trim()
            .parse()
            .with_context(|| format!("--arm {text}: the weight is not a whole number"))?,
    })
}

pub async fn experiment(
    session: &Session,
    command: ExperimentCommand,
    format: Format,
) -> anyhow::Result<()> {
    match command {
        ExperimentCommand::Start { model, arms, salt } => {
            let (name, alias) = split_alias(&model)?;
            let request = pb::SetTrafficSplitRequest {
                name,
                alias,
                arms: arms.iter().map(|a| arm(a)).collect::<Result<_, _>>()?,
                salt,
            };
            let split = session
                .registry()
                .set_traffic_split(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            print_split(&split, format);
        }
        ExperimentCommand::Show {
            model,
            since,
            until,
            horizon_days,
        } => {
            let (name, alias) = split_alias(&model)?;
            let request = pb::ExperimentReportRequest {
                name,
                alias,
                since: optional_timestamp("since", &since)?,
                until: optional_timestamp("until", &until)?,
                horizon_days,
            };
            let report = MonitoringServiceClient::new(session.channel.clone())
                .experiment_report(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            print_report(&report, format);
        }
        ExperimentCommand::Stop { model, keep } => {
            let (name, alias) = split_alias(&model)?;
            let request = pb::GetTrafficSplitRequest {
                name: name.clone(),
                alias: alias.clone(),
            };
            let split = session
                .registry()
                .get_traffic_split(session.request(request)?)
                .await
                .map_err(status)?
                .into_inner();
            let version = match keep {
                Some(version) => version,
                None => split.arms.first().map(|a| a.version).unwrap_or_default(),
            };
            let request = pb::SetAliasRequest {
                name: name.clone(),
                alias: alias.clone(),
                version,
                gate: None,
            };
            session
                .registry()
                .set_alias(session.request(request)?)
                .await
                .map_err(status)?;
            eprintln!("ended the split of {name}@{alias}; it now points at version {version}");
        }
    }
    Ok(())
}

fn print_split(split: &pb::TrafficSplit, format: Format) {
    let mut table = Table::new(&["MODEL", "ALIAS", "VERSION", "WEIGHT", "SALT", "STARTED"]);
    for arm in &split.arms {
        table.row(vec![
            json!(split.name),
            json!(split.alias),
            json!(arm.version),
            json!(arm.weight),
            json!(split.salt),
            json!(utc_of(split.started_at.as_ref())),
        ]);
    }
    table.print(format);
}

/// One row per arm: its numbers, then (after the first) its comparison with the first.
fn print_report(report: &pb::ExperimentReportResponse, format: Format) {
    let split = report.split.clone().unwrap_or_default();
    if format == Format::Table {
        let ended = match &split.ended_at {
            Some(at) => format!(", ended {}", utc_of(Some(at))),
            None => String::new(),
        };
        line(&format!(
            "{}@{} split since {}{ended} (salt {})",
            split.name,
            split.alias,
            utc_of(split.started_at.as_ref()),
            split.salt
        ));
    }
    let mut table = Table::new(&[
        "VERSION",
        "WEIGHT",
        "CUSTOMERS",
        "LABELLED",
        "CHURNED",
        "CHURN RATE",
        "RATE LOW",
        "RATE HIGH",
        "ROC AUC",
        "RATE DIFF",
        "DIFF LOW",
        "DIFF HIGH",
        "RATE P",
        "AUC DIFF",
        "AUC P",
        "LABELLED NEEDED",
    ]);
    for arm in &report.arms {
        let version = arm.served_by.as_ref().map_or(0, |s| s.version);
        let mut row = vec![
            json!(version),
            json!(arm.weight),
            json!(arm.customers),
            json!(arm.labelled),
            json!(arm.churned),
            json!(arm.churn_rate),
            json!(arm.churn_rate_lower),
            json!(arm.churn_rate_upper),
            arm.realized
                .as_ref()
                .map_or(Value::Null, |m| json!(m.roc_auc)),
        ];
        match report.comparisons.iter().find(|c| c.version == version) {
            Some(c) => row.extend([
                json!(c.churn_rate_difference),
                json!(c.churn_rate_difference_lower),
                json!(c.churn_rate_difference_upper),
                json!(c.churn_rate_p_value),
                json!(c.roc_auc_difference),
                json!(c.roc_auc_p_value),
                json!(c.labelled_needed),
            ]),
            None => row.extend(std::iter::repeat_n(Value::Null, 7)),
        }
        table.row(row);
    }
    table.print(format);
}
