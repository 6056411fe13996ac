//! The finished job: the output (CSV or Parquet) and the side file of rejected rows,
//! both built from the journal into temporary files and renamed into place, so a reader
//! never sees half a file.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::input::FileFormat;
use super::journal::{self, Entry, JobHeader};

/// Rows per Parquet row group: large enough to compress well, small enough to bound memory.
const ROW_GROUP_ROWS: usize = 65_536;

/// What the output holds besides the prediction.
#[derive(Debug, Clone)]
pub struct OutputShape {
    pub reasons: bool,
    /// `--value-column` with `--horizon`: adds `value_at_risk` = probability × value × horizon.
    pub horizon: Option<f64>,
    /// `--top N`: only the N highest risks, highest first.
    pub top: Option<usize>,
}

/// One output row.
#[derive(Debug, Clone)]
struct Record {
    row: u64,
    customer_id: String,
    probability: String,
    will_churn: bool,
    band: String,
    reasons: Option<String>,
    value_at_risk: Option<f64>,
}

impl Record {
    fn risk(&self) -> f64 {
        let risk = self
            .value_at_risk
            .unwrap_or_else(|| self.probability.parse().unwrap_or(f64::NAN));
        if risk.is_nan() {
            f64::NEG_INFINITY
        } else {
            risk
        }
    }
}

/// Ranks by risk, then earlier rows first, so ties are broken the same way every run.
#[derive(Debug)]
struct Ranked(Record);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .risk()
            .total_cmp(&other.0.risk())
            .then_with(|| other.0.row.cmp(&self.0.row))
    }
}

/// Counts for the closing summary.
#[derive(Debug, Default)]
pub struct Totals {
    pub rows: u64,
    pub scored: u64,
    pub rejected: u64,
    /// Scored rows by band, in the order the bands first appeared.
    pub bands: Vec<(String, u64)>,
}

impl Totals {
    fn count_band(&mut self, band: &str) {
        match self.bands.iter_mut().find(|(name, _)| name == band) {
            Some((_, count)) => *count += 1,
            None => self.bands.push((band.to_owned(), 1)),
        }
    }
}

/// Writes the output and the side file from a finished journal.
pub fn finish(
    journal: &Path,
    header: &JobHeader,
    output: &Path,
    errors: &Path,
    shape: &OutputShape,
) -> anyhow::Result<Totals> {
    let output_tmp = temporary(output);
    let errors_tmp = temporary(errors);
    let mut sink = Sink::create(&output_tmp, FileFormat::of(output), header, shape)?;
    let mut rejected = csv::Writer::from_path(&errors_tmp)
        .with_context(|| format!("cannot create {}", errors_tmp.display()))?;
    rejected.write_record(["row", "customer_id", "feature", "error"])?;
    let mut totals = Totals::default();
    let mut top = BinaryHeap::new();
    for entry in journal::entries(journal)? {
        totals.rows += 1;
        match entry? {
            Entry::Rejected {
                row,
                customer_id,
                feature,
                error,
                ..
            } => {
                totals.rejected += 1;
                rejected.write_record([&row.to_string(), &customer_id, &feature, &error])?;
            }
            Entry::Scored {
                row,
                customer_id,
                probability,
                will_churn,
                band,
                reasons,
                value,
            } => {
                totals.scored += 1;
                totals.count_band(&band);
                let value_at_risk = shape.horizon.map(|horizon| {
                    let value: f64 = value
                        .as_deref()
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(f64::NAN);
                    probability.parse::<f64>().unwrap_or(f64::NAN) * value * horizon
                });
                let record = Record {
                    row,
                    customer_id,
                    probability,
                    will_churn,
                    band,
                    reasons,
                    value_at_risk,
                };
                match shape.top {
                    Some(n) => {
                        top.push(Reverse(Ranked(record)));
                        if top.len() > n {
                            top.pop();
                        }
                    }
                    None => sink.write(record)?,
                }
            }
        }
    }
    for Reverse(Ranked(record)) in top.into_sorted_vec() {
        sink.write(record)?;
    }
    sink.finish()?;
    rejected.flush()?;
    drop(rejected);
    std::fs::rename(&output_tmp, output)
        .with_context(|| format!("cannot move the output into {}", output.display()))?;
    if totals.rejected > 0 {
        std::fs::rename(&errors_tmp, errors)
            .with_context(|| format!("cannot move the side file into {}", errors.display()))?;
    } else {
        std::fs::remove_file(&errors_tmp)?;
        if errors.exists() {
            std::fs::remove_file(errors)?;
        }
    }
    Ok(totals)
}

fn temporary(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

enum Sink {
    Csv(Box<csv::Writer<BufWriter<File>>>, OutputShape),
    Parquet(Box<ParquetSink>),
}

impl Sink {
    fn create(
        path: &Path,
        format: FileFormat,
        header: &JobHeader,
        shape: &OutputShape,
    ) -> anyhow::Result<Sink> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        if format == FileFormat::Parquet {
            return Ok(Sink::Parquet(Box::new(ParquetSink::new(
                file, header, shape,
            )?)));
        }
        let mut writer = csv::Writer::from_writer(BufWriter::new(file));
        let mut columns = vec![
            "customer_id",
            "churn_probability",
            "will_churn",
            "risk_band",
        ];
        if shape.reasons {
            columns.push("top_reasons");
        }
        if shape.horizon.is_some() {
            columns.push("value_at_risk");
        }
        writer.write_record(&columns)?;
        Ok(Sink::Csv(Box::new(writer), shape.clone()))
    }

    fn write(&mut self, record: Record) -> anyhow::Result<()> {
        match self {
            Sink::Csv(writer, shape) => {
                let mut cells = vec![
                    record.customer_id,
                    record.probability,
                    record.will_churn.to_string(),
                    record.band,
                ];
                if shape.reasons {
                    cells.push(record.reasons.unwrap_or_default());
                }
                if shape.horizon.is_some() {
                    cells.push(
                        record
                            .value_at_risk
                            .filter(|v| !v.is_nan())
                            .map_or(String::new(), |v| v.to_string()),
                    );
                }
                writer.write_record(&cells)?;
            }
            Sink::Parquet(sink) => {
                sink.rows.push(record);
                if sink.rows.len() == ROW_GROUP_ROWS {
                    sink.flush_row_group()?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> anyhow::Result<()> {
        match self {
            Sink::Csv(mut writer, _) => {
                writer.flush()?;
                Ok(())
            }
            Sink::Parquet(mut sink) => {
                sink.flush_row_group()?;
                sink.writer.close()?;
                Ok(())
            }
        }
    }
}

struct ParquetSink {
    writer: SerializedFileWriter<File>,
    shape: OutputShape,
    rows: Vec<Record>,
}

impl ParquetSink {
    fn new(file: File, header: &JobHeader, shape: &OutputShape) -> anyhow::Result<ParquetSink> {
        let mut schema = String::from(
            "message churn_scores {
                REQUIRED BYTE_ARRAY customer_id (UTF8);
                REQUIRED DOUBLE churn_probability;
                REQUIRED BOOLEAN will_churn;
                REQUIRED BYTE_ARRAY risk_band (UTF8);",
        );
        if shape.reasons {
            schema.push_str("REQUIRED BYTE_ARRAY top_reasons (UTF8);");
        }
        if shape.horizon.is_some() {
            schema.push_str("OPTIONAL DOUBLE value_at_risk;");
        }
        schema.push('}');
        let schema: Type = parquet::schema::parser::parse_message_type(&schema)?;
        let metadata = [
            ("churnserve.model", header.model.clone()),
            ("churnserve.version", header.version.to_string()),
            ("churnserve.sha256", header.sha256.clone()),
        ]
        .into_iter()
        .map(|(key, value)| KeyValue::new(key.to_owned(), value))
        .collect();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(metadata))
            .build();
        Ok(ParquetSink {
            writer: SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties))?,
            shape: shape.clone(),
            rows: Vec::with_capacity(ROW_GROUP_ROWS),
        })
    }

    fn flush_row_group(&mut self) -> anyhow::Result<()> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let rows = std::mem::take(&mut self.rows);
        let text = |cell: fn(&Record) -> &str| {
            ColumnData::Text(rows.iter().map(|r| ByteArray::from(cell(r))).collect())
        };
        let mut columns = vec![
            text(|r| &r.customer_id),
            ColumnData::Double(
                rows.iter()
                    .map(|r| r.probability.parse().unwrap_or(f64::NAN))
                    .collect(),
                None,
            ),
            ColumnData::Bool(rows.iter().map(|r| r.will_churn).collect()),
            text(|r| &r.band),
        ];
        if self.shape.reasons {
            columns.push(text(|r| r.reasons.as_deref().unwrap_or_default()));
        }
        if self.shape.horizon.is_some() {
            let known = |r: &Record| r.value_at_risk.filter(|v| !v.is_nan());
            columns.push(ColumnData::Double(
                rows.iter().filter_map(known).collect(),
                Some(rows.iter().map(|r| i16::from(known(r).is_some())).collect()),
            ));
        }
        let mut group = self.writer.next_row_group()?;
        for data in columns {
            let mut column = group
                .next_column()?
                .context("the Parquet schema has fewer columns than written")?;
            match data {
                ColumnData::Text(values) => {
                    column
                        .typed::<ByteArrayType>()
                        .write_batch(&values, None, None)?;
                }
                ColumnData::Double(values, levels) => {
                    column
                        .typed::<DoubleType>()
                        .write_batch(&values, levels.as_deref(), None)?;
                }
                ColumnData::Bool(values) => {
                    column
                        .typed::<BoolType>()
                        .write_batch(&values, None, None)?;
                }
            }
            column.close()?;
        }
        group.close()?;
        Ok(())
    }
}

/// One column of a row group; doubles carry definition levels when optional.
enum ColumnData {
    Text(Vec<ByteArray>),
    Double(Vec<f64>, Option<Vec<i16>>),
    Bool(Vec<bool>),
}
