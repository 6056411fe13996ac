//! Reading an uploaded CSV dataset: once at upload for its header, row count and
//! positives (with an error naming the line and the expectation when the file is
//! malformed), and later for its first rows.

use std::path::PathBuf;

use tokio::sync::mpsc;

use crate::error::RegistryError;
use crate::records::{DatasetRecord, DatasetRows};

/// What an uploaded CSV dataset holds, read once at upload.
#[derive(Debug, PartialEq, Eq)]
pub struct CsvSummary {
    /// Data rows, the header excluded.
    pub rows: u64,
    /// Rows whose label is the positive label.
    pub positives: u64,
    /// The header's column names.
    pub columns: Vec<String>,
}

pub(crate) async fn summarize(
    path: PathBuf,
    label_column: &str,
    positive_label: &str,
) -> Result<CsvSummary, RegistryError> {
    let (label_column, positive_label) = (label_column.to_owned(), positive_label.to_owned());
    tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path)?;
        summarize_csv(
            std::io::BufReader::new(file),
            &label_column,
            &positive_label,
        )
    })
    .await
    .map_err(|e| RegistryError::Storage(format!("dataset reader task failed: {e}")))?
}

/// Reads a CSV dataset as an upload does: the header must name `label_column`, every row
/// must have the header's number of fields; errors name the line and the expectation.
pub fn summarize_csv(
    csv: impl std::io::Read,
    label_column: &str,
    positive_label: &str,
) -> Result<CsvSummary, RegistryError> {
    let invalid = |message: String| RegistryError::Invalid(message);
    if label_column.is_empty() || positive_label.is_empty() {
        return Err(invalid(
            "metadata: label_column and positive_label are required".to_owned(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv);
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| invalid(format!("csv header: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    if columns.iter().all(String::is_empty) {
        return Err(invalid(
            "csv: the file is empty; expected a header row".to_owned(),
        ));
    }
    let label = columns
        .iter()
        .position(|c| c == label_column)
        .ok_or_else(|| {
            invalid(format!(
                "label_column {label_column:?} is not a column of the header ({})",
                columns.join(", ")
            ))
        })?;
    let (mut rows, mut positives) = (0u64, 0u64);
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            invalid(format!(
                "csv line {line}: {e}; expected {} fields like the header",
                columns.len()
            ))
        })?;
        rows += 1;
        positives += u64::from(record.get(label) == Some(positive_label));
    }
    Ok(CsvSummary {
        rows,
        positives,
        columns,
    })
}

pub(crate) async fn read_rows(
    path: PathBuf,
    record: DatasetRecord,
    limit: usize,
) -> Result<DatasetRows, RegistryError> {
    let mut chunks = chunks(path, record.clone(), limit, 0);
    match chunks.recv().await {
        Some(first) => first,
        None => Ok(DatasetRows {
            columns: record.columns,
            ..DatasetRows::default()
        }),
    }
}

/// Reads the dataset in chunks of `chunk_rows` records on the blocking pool and sends
/// them in order, at most `ahead` chunks ahead of the reader; a reader that drops the
/// receiver stops the reading. Memory stays at a few chunks whatever the file's size.
pub(crate) fn chunks(
    path: PathBuf,
    record: DatasetRecord,
    chunk_rows: usize,
    ahead: usize,
) -> mpsc::Receiver<Result<DatasetRows, RegistryError>> {
    let (sender, receiver) = mpsc::channel(ahead.max(1));
    tokio::task::spawn_blocking(move || {
        let sent = scan_file(&path, &record, chunk_rows.max(1), |chunk| {
            sender.blocking_send(Ok(chunk)).is_ok()
        });
        if let Err(error) = sent {
            let _ = sender.blocking_send(Err(error));
        }
    });
    receiver
}

/// Hands each chunk to `consume` until the file ends or `consume` answers `false`.
fn scan_file(
    path: &std::path::Path,
    record: &DatasetRecord,
    chunk_rows: usize,
    mut consume: impl FnMut(DatasetRows) -> bool,
) -> Result<(), RegistryError> {
    let unreadable = |e: csv::Error| {
        RegistryError::Storage(format!("dataset {:?} cannot be read: {e}", record.name))
    };
    let mut reader = csv::Reader::from_path(path).map_err(unreadable)?;
    let label = record
        .columns
        .iter()
        .position(|c| *c == record.label_column);
    let mut records = reader.records();
    loop {
        let mut chunk = DatasetRows {
            columns: record.columns.clone(),
            rows: Vec::with_capacity(chunk_rows),
            churned: Vec::with_capacity(chunk_rows),
        };
        for result in records.by_ref().take(chunk_rows) {
            let fields = result.map_err(unreadable)?;
            chunk
                .churned
                .push(label.and_then(|l| fields.get(l)) == Some(record.positive_label.as_str()));
            chunk.rows.push(fields.iter().map(str::to_owned).collect());
        }
        let last = chunk.rows.len() < chunk_rows;
        if chunk.rows.is_empty() || !consume(chunk) || last {
            return Ok(());
        }
    }
}
