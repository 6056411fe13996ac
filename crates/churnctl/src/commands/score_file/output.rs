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
    /// `--target profit`: adds `contact`, true for the customers a campaign reaches.
    pub contact: Option<Contact>,
}

/// How many of the scored customers a campaign contacts, riskiest first (by probability,
/// or by value at risk with `--value-column`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Contact {
    /// The fraction of customers the version's latest evaluation found most profitable.
    Fraction(f64),
    /// `--budget N`.
    Budget(u64),
}

impl Contact {
    fn count(self, scored: u64) -> u64 {
        match self {
            Contact::Fraction(fraction) => (fraction * scored as f64).round() as u64,
            Contact::Budget(budget) => budget.min(scored),
        }
    }
}

/// Which customers a campaign contacts, decided from every scored row's risk before the
/// output is written: those above `cutoff`, then, in row order, the first `tied` of those
/// at it. Holds one risk per scored customer while it is chosen (8 bytes each).
#[derive(Debug, Clone, Copy)]
struct Cutoff {
    risk: f64,
    tied: u64,
}

impl Cutoff {
    fn choose(mut risks: Vec<f64>, contacted: u64) -> Option<Cutoff> {
        let contacted = usize::try_from(contacted).ok()?;
        if contacted == 0 || risks.is_empty() {
            return None;
        }
        let position = contacted.min(risks.len()) - 1;
        let (_, &mut risk, _) = risks.select_nth_unstable_by(position, |a, b| b.total_cmp(a));
        let above = risks.iter().filter(|r| r.total_cmp(&risk).is_gt()).count();
        Some(Cutoff {
            risk,
            tied: (position + 1 - above) as u64,
        })
    }

    /// Whether the next customer in row order, of this risk, is contacted.
    fn contacts(&mut self, risk: f64) -> bool {
        match risk.total_cmp(&self.risk) {
            Ordering::Greater => true,
            Ordering::Equal if self.tied > 0 => {
                self.tied -= 1;
                true
            }
            _ => false,
        }
    }
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
    contact: Option<bool>,
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
    /// Customers the campaign contacts (`--target profit`).
    pub contacted: u64,
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

/// A journaled score as an output row (its `contact` decided later).
fn record(entry: Entry, shape: &OutputShape) -> Option<Record> {
    let Entry::Scored {
        row,
        customer_id,
        probability,
        will_churn,
        band,
        reasons,
        value,
    } = entry
    else {
        return None;
    };
    let value_at_risk = shape.horizon.map(|horizon| {
        let value: f64 = value
            .as_deref()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(f64::NAN);
        probability.parse::<f64>().unwrap_or(f64::NAN) * value * horizon
    });
    Some(Record {
        row,
        customer_id,
        probability,
        will_churn,
        band,
        reasons,
        value_at_risk,
        contact: None,
    })
}

/// The contact cut-off over the whole journal: a first pass, before the output's.
fn cutoff(journal: &Path, shape: &OutputShape) -> anyhow::Result<Option<Cutoff>> {
    let Some(contact) = shape.contact else {
        return Ok(None);
    };
    let mut risks = Vec::new();
    for entry in journal::entries(journal)? {
        if let Some(record) = record(entry?, shape) {
            risks.push(record.risk());
        }
    }
    let contacted = contact.count(risks.len() as u64);
    Ok(Cutoff::choose(risks, contacted))
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
    let mut cutoff = cutoff(journal, shape)?;
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
            scored => {
                let mut record = record(scored, shape).expect("a scored entry");
                totals.scored += 1;
                totals.count_band(&record.band);
                if shape.contact.is_some() {
                    let contacted = cutoff.as_mut().is_some_and(|c| c.contacts(record.risk()));
                    totals.contacted += u64::from(contacted);
                    record.contact = Some(contacted);
                }
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
        if shape.contact.is_some() {
            columns.push("contact");
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
                if let Some(contact) = record.contact {
                    cells.push(contact.to_string());
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
        if shape.contact.is_some() {
            schema.push_str("REQUIRED BOOLEAN contact;");
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
        if self.shape.contact.is_some() {
            columns.push(ColumnData::Bool(
                rows.iter().map(|r| r.contact == Some(true)).collect(),
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
