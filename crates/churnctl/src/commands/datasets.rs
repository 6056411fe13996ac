//! `datasets upload` and `datasets list`.

use std::path::PathBuf;

use anyhow::Context;
use churn_api::v1 as pb;
use clap::Subcommand;
use serde_json::json;

use super::register::upload_messages;
use crate::output::{Format, Table};
use crate::session::{Session, status};

#[derive(Debug, Subcommand)]
pub(crate) enum DatasetsCommand {
    /// Upload a CSV file with a header row.
    Upload {
        file: PathBuf,
        #[arg(long)]
        name: String,
        /// The column holding the outcome.
        #[arg(long)]
        label_column: String,
        /// The label value that means churned.
        #[arg(long)]
        positive_label: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List the datasets.
    List,
}

pub(crate) async fn datasets(
    session: &Session,
    command: DatasetsCommand,
    format: Format,
) -> anyhow::Result<()> {
    match command {
        DatasetsCommand::Upload {
            file,
            name,
            label_column,
            positive_label,
            description,
        } => {
            let metadata = pb::DatasetMetadata {
                name,
                label_column,
                positive_label,
                description,
            };
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let messages = upload_messages(&file, bytes, |chunk| pb::UploadDatasetRequest {
                part: Some(pb::upload_dataset_request::Part::CsvChunk(chunk)),
            });
            let first = pb::UploadDatasetRequest {
                part: Some(pb::upload_dataset_request::Part::Metadata(metadata)),
            };
            let stream = tokio_stream::iter(std::iter::once(first).chain(messages));
            let dataset = session
                .registry()
                .upload_dataset(session.request(stream)?)
                .await
                .map_err(status)?
                .into_inner();
            datasets_table(&[dataset]).print(format);
        }
        DatasetsCommand::List => {
            let datasets = session
                .registry()
                .list_datasets(session.request(pb::ListDatasetsRequest {})?)
                .await
                .map_err(status)?;
            datasets_table(&datasets.into_inner().datasets).print(format);
        }
    }
    Ok(())
}

fn datasets_table(datasets: &[pb::Dataset]) -> Table {
    let mut table = Table::new(&["NAME", "ROWS", "POSITIVES", "COLUMNS", "SHA256"]);
    for d in datasets {
        table.row(vec![
            json!(d.name),
            json!(d.rows),
            json!(d.positives),
            json!(d.columns.len()),
            json!(d.sha256.get(..12).unwrap_or(&d.sha256)),
        ]);
    }
    table
}
