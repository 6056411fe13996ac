//! `churnctl outcomes upload` and `churnctl performance`: what became of the customers,
//! and how good each cohort's predictions turned out.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate};
use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use crate::args::Target;
use crate::output::{Format, Table, line, progress_bar, utc_of};
use crate::session::{Session, status};

#[derive(Debug, Subcommand)]
pub enum OutcomesCommand {
    /// Record outcomes from a CSV file with the columns `customer_id`, `churned` (true/false,
    /// yes/no or 1/0) and `observed_at` (RFC 3339, or a date meaning its midnight UTC),
    /// streamed in batches; rows that cannot be read go to a side file, the others are
    /// recorded.
    Upload {
        file: PathBuf,
        /// Where unreadable rows go, with the reason; default: FILE.rejected.csv.
        #[arg(long)]
        rejected: Option<PathBuf>,
        /// Outcomes per request (at most the server's --max-batch-rows).
        #[arg(long, default_value_t = 5_000)]
        batch_rows: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Cohort {
    Day,
    Week,
    Month,
}

#[derive(Debug, Args)]
pub struct Performance {
    #[command(flatten)]
    target: Target,
    /// Predictions scored at or after this (RFC 3339 or a date); default: the start of the log.
    #[arg(long)]
    since: Option<String>,
    /// Predictions scored before this; default: now.
    #[arg(long)]
    until: Option<String>,
    #[arg(long, value_enum, default_value = "week")]
    cohort: Cohort,
    /// Days after a prediction an outcome still labels it; default 90.
    #[arg(long, default_value_t = 0)]
    horizon_days: u32,
}

fn monitoring(session: &Session) -> MonitoringServiceClient<tonic::transport::Channel> {
    MonitoringServiceClient::new(session.channel.clone())
}

/// RFC 3339, or a date (its midnight UTC), as a protobuf timestamp.
pub(crate) fn timestamp(text: &str) -> Result<prost_types::Timestamp, String> {
    let millis = DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.timestamp_millis())
        .or_else(|_| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map(|d| {
                d.and_hms_opt(0, 0, 0)
                    .unwrap_or_default()
                    .and_utc()
                    .timestamp_millis()
            })
        })
        .map_err(|_| format!("{text:?} is not an RFC 3339 time or a YYYY-MM-DD date"))?;
    Ok(prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    })
}

/// `--FLAG`'s time, when given.
pub(crate) fn optional_timestamp(
    flag: &str,
    value: &Option<String>,
) -> anyhow::Result<Option<prost_types::Timestamp>> {
    value
        .as_deref()
        .map(|text| timestamp(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
        .transpose()
}

fn churned(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(format!(
            "churned {text:?}: expected true/false, yes/no or 1/0"
        )),
    }
}

pub async fn outcomes(session: &Session, command: OutcomesCommand) -> anyhow::Result<()> {
    let OutcomesCommand::Upload {
        file,
        rejected,
        batch_rows,
    } = command;
    if batch_rows == 0 {
        bail!("--batch-rows must be at least 1");
    }
    let rejected_path = rejected.unwrap_or_else(|| {
        let mut name = file.clone().into_os_string();
        name.push(".rejected.csv");
        PathBuf::from(name)
    });
    let mut reader =
        csv::Reader::from_path(&file).with_context(|| format!("{}", file.display()))?;
    let header = reader.headers()?.clone();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
            .with_context(|| {
                format!(
                    "{}: no `{name}` column (the header has {:?})",
                    file.display(),
                    header.iter().collect::<Vec<_>>()
                )
            })
    };
    let (id, churn, observed) = (
        column("customer_id")?,
        column("churned")?,
        column("observed_at")?,
    );
    let size = std::fs::metadata(&file).map_or(0, |m| m.len());
    let bar = progress_bar(
        size,
        "{msg} [{bar:20}] {percent:>3}%  {bytes}/{total_bytes}",
    );
    bar.set_message(format!("recording {}", file.display()));
    let mut side = Rejections::new(&rejected_path);
    let (mut batch, mut recorded, mut matched) = (Vec::with_capacity(batch_rows), 0, 0);
    let mut client = monitoring(session);
    for record in reader.records() {
        let record = record?;
        let row = record.position().map_or(0, csv::Position::line);
        let field = |k: usize| record.get(k).unwrap_or_default();
        let parsed = (|| {
            if field(id).trim().is_empty() {
                return Err("customer_id: empty".to_owned());
            }
            Ok(pb::Outcome {
                customer_id: field(id).trim().to_owned(),
                churned: churned(field(churn))?,
                observed_at: Some(
                    timestamp(field(observed)).map_err(|e| format!("observed_at: {e}"))?,
                ),
            })
        })();
        match parsed {
            Ok(outcome) => batch.push(outcome),
            Err(reason) => side.add(row, &record, &reason)?,
        }
        bar.set_position(record.position().map_or(0, csv::Position::byte));
        if batch.len() == batch_rows {
            let (r, m) = send(session, &mut client, std::mem::take(&mut batch)).await?;
            (recorded, matched) = (recorded + r, matched + m);
        }
    }
    if !batch.is_empty() {
        let (r, m) = send(session, &mut client, batch).await?;
        (recorded, matched) = (recorded + r, matched + m);
    }
    bar.finish_and_clear();
    line(&format!(
        "recorded {recorded} outcomes, {matched} of them label a logged prediction; {} rows rejected{}",
        side.count,
        if side.count > 0 {
            format!(" (see {})", rejected_path.display())
        } else {
            String::new()
        }
    ));
    Ok(())
}

async fn send(
    session: &Session,
    client: &mut MonitoringServiceClient<tonic::transport::Channel>,
    outcomes: Vec<pb::Outcome>,
) -> anyhow::Result<(u64, u64)> {
    let response = client
        .record_outcomes(session.request(pb::RecordOutcomesRequest { outcomes })?)
        .await
        .map_err(status)?
        .into_inner();
    Ok((response.recorded, response.matched))
}

/// The side file of unreadable rows, created with the first one.
struct Rejections<'a> {
    path: &'a Path,
    writer: Option<csv::Writer<std::fs::File>>,
    count: u64,
}

impl<'a> Rejections<'a> {
    fn new(path: &'a Path) -> Rejections<'a> {
        Rejections {
            path,
            writer: None,
            count: 0,
        }
    }

    fn add(&mut self, line: u64, record: &csv::StringRecord, reason: &str) -> anyhow::Result<()> {
        if self.writer.is_none() {
            let mut writer = csv::Writer::from_path(self.path)
                .with_context(|| format!("{}", self.path.display()))?;
            writer.write_record(["line", "row", "error"])?;
            self.writer = Some(writer);
        }
        let row = record.iter().collect::<Vec<_>>().join(",");
        if let Some(writer) = &mut self.writer {
            writer.write_record([line.to_string().as_str(), row.as_str(), reason])?;
            writer.flush()?;
        }
        self.count += 1;
        Ok(())
    }
}

pub async fn performance(
    session: &Session,
    performance: Performance,
    format: Format,
) -> anyhow::Result<()> {
    let request = pb::RealizedPerformanceRequest {
        model: performance.target.model_ref()?,
        since: optional_timestamp("since", &performance.since)?,
        until: optional_timestamp("until", &performance.until)?,
        cohort: match performance.cohort {
            Cohort::Day => pb::CohortPeriod::Day,
            Cohort::Week => pb::CohortPeriod::Week,
            Cohort::Month => pb::CohortPeriod::Month,
        }
        .into(),
        horizon_days: performance.horizon_days,
    };
    let response = monitoring(session)
        .realized_performance(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner();
    let served_by = response.served_by.unwrap_or_default();
    if format == Format::Table {
        line(&format!("{} version {}", served_by.name, served_by.version));
    }
    let mut table = Table::new(&[
        "COHORT",
        "SCORED",
        "LABELLED",
        "CHURNED",
        "ROC AUC",
        "EST ROC AUC",
        "PRECISION",
        "EST PRECISION",
        "RECALL",
        "EST RECALL",
    ]);
    for cohort in &response.cohorts {
        let realized = cohort.realized.as_ref();
        let estimated = cohort.estimated.unwrap_or_default();
        let measured = |value: Option<f64>| value.map_or(json!(null), |v| json!(v));
        table.row(vec![
            json!(utc_of(cohort.start.as_ref())),
            json!(cohort.scored),
            json!(cohort.labelled),
            json!(cohort.churned),
            measured(realized.map(|m| m.roc_auc)),
            json!(estimated.roc_auc),
            measured(realized.map(|m| m.precision)),
            json!(estimated.precision),
            measured(realized.map(|m| m.recall)),
            json!(estimated.recall),
        ]);
    }
    table.print(format);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_labels_read_as_documented() {
        assert_eq!(
            timestamp("2026-03-01").expect("date").seconds,
            1_772_323_200
        );
        let precise = timestamp("2026-03-01T00:00:00.250+01:00").expect("RFC 3339");
        assert_eq!(
            (precise.seconds, precise.nanos),
            (1_772_319_600, 250_000_000)
        );
        assert!(timestamp("yesterday").is_err());
        assert_eq!(churned(" Yes "), Ok(true));
        assert_eq!(churned("0"), Ok(false));
        assert!(churned("maybe").is_err());
    }
}
