//! `churnctl drift`: how far the rows a version scored on every replica have moved from its
//! reference dataset, feature by feature and for the served probability.

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use clap::Args;
use serde_json::json;

use crate::args::Target;
use crate::commands::outcomes::optional_timestamp;
use crate::output::{Format, Table, line};
use crate::session::{Session, status};

#[derive(Debug, Args)]
pub struct Drift {
    #[command(flatten)]
    target: Target,
    /// Rows scored at or after this (RFC 3339 or a date); default: the first counted.
    #[arg(long)]
    since: Option<String>,
    /// Rows scored before this; default: now.
    #[arg(long)]
    until: Option<String>,
    /// One row per bin (its reference share and served rows) instead of one per feature.
    #[arg(long)]
    bins: bool,
}

/// How to read a PSI, at the usual cut points (as the console reads it).
fn reading(psi: f64) -> &'static str {
    match psi {
        psi if psi.is_nan() => "no rows",
        psi if psi < 0.1 => "stable",
        psi if psi < 0.25 => "watch",
        _ => "act",
    }
}

pub async fn drift(session: &Session, job: Drift, format: Format) -> anyhow::Result<()> {
    let request = pb::DriftReportRequest {
        model: job.target.model_ref()?,
        since: optional_timestamp("since", &job.since)?,
        until: optional_timestamp("until", &job.until)?,
    };
    let report = MonitoringServiceClient::new(session.channel.clone())
        .drift_report(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let served_by = report.served_by.unwrap_or_default();
    if format == Format::Table {
        line(&format!(
            "{} version {}: {} rows scored on every replica",
            served_by.name, served_by.version, report.rows
        ));
    }
    let features = report.features.iter().chain(report.prediction.as_ref());
    let psi = |value: f64| {
        if value.is_nan() {
            json!(null)
        } else {
            json!(value)
        }
    };
    let table = if job.bins {
        let mut table = Table::new(&["FEATURE", "BIN", "REFERENCE", "SERVED"]);
        for feature in features {
            for bin in &feature.bins {
                table.row(vec![
                    json!(feature.feature),
                    json!(bin.label),
                    json!(bin.reference_fraction),
                    json!(bin.serving_count),
                ]);
            }
        }
        table
    } else {
        let mut table = Table::new(&["FEATURE", "PSI", "READING"]);
        for feature in features {
            table.row(vec![
                json!(feature.feature),
                psi(feature.psi),
                json!(reading(feature.psi)),
            ]);
        }
        table
    };
    table.print(format);
    Ok(())
}
