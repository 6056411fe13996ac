//! Reading customers from CSV or Parquet by the model's raw feature names, typed by the
//! version's schema. A row the file itself makes unreadable becomes a [`LocalError`];
//! everything readable goes to the server, which is the one judge of feature values.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};

/// Column names tried, in order, for the customer id when `--id-column` is not given.
const ID_COLUMNS: [&str; 3] = ["customer_id", "customerid", "id"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Csv,
    Parquet,
}

impl FileFormat {
    /// `.parquet` / `.pq` is Parquet, anything else CSV.
    pub fn of(path: &Path) -> FileFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(extension)
                if extension.eq_ignore_ascii_case("parquet")
                    || extension.eq_ignore_ascii_case("pq") =>
            {
                FileFormat::Parquet
            }
            _ => FileFormat::Csv,
        }
    }
}

/// One input row: what goes to the server, or why it cannot.
#[derive(Debug)]
pub struct InputRow {
    /// 0-based data row of the file.
    pub row: u64,
    pub outcome: Result<ReadRow, LocalError>,
}

#[derive(Debug)]
pub struct ReadRow {
    pub customer_id: String,
    /// In the order of [`ColumnPlan::feature_names`].
    pub features: Vec<pb::FeatureValue>,
    /// The `--value-column` cell, as written in the file.
    pub value: Option<String>,
}

/// A row the file makes unreadable (wrong field count, invalid UTF-8).
#[derive(Debug)]
pub struct LocalError {
    pub customer_id: String,
    pub column: String,
    pub message: String,
}

/// One cell, before the schema types it.
enum Cell {
    Missing,
    Number(f64),
    Text(String),
    Flag(bool),
}

/// Where each needed column sits in the file.
#[derive(Debug)]
pub struct ColumnPlan {
    id: Option<usize>,
    value: Option<usize>,
    features: Vec<(String, pb::FeatureKind, usize)>,
}

impl ColumnPlan {
    /// Fails, before anything is scored, when a feature or a named column is absent.
    pub fn new(
        columns: &[String],
        schema: &[pb::FeatureSpec],
        id_column: Option<&str>,
        value_column: Option<&str>,
    ) -> anyhow::Result<ColumnPlan> {
        let position = |name: &str| columns.iter().position(|column| column == name);
        let id = match id_column {
            Some(name) => Some(position(name).with_context(|| {
                format!(
                    "--id-column {name}: the input has no such column; its columns are {columns:?}"
                )
            })?),
            None => ID_COLUMNS.iter().find_map(|candidate| {
                columns
                    .iter()
                    .position(|column| column.eq_ignore_ascii_case(candidate))
            }),
        };
        let value = value_column
            .map(|name| {
                position(name).with_context(|| {
                    format!("--value-column {name}: the input has no such column; its columns are {columns:?}")
                })
            })
            .transpose()?;
        let missing: Vec<&str> = schema
            .iter()
            .filter(|feature| position(&feature.name).is_none())
            .map(|feature| feature.name.as_str())
            .collect();
        if !missing.is_empty() {
            bail!(
                "the input has no column for the model's feature(s) {}; its columns are {columns:?}",
                missing.join(", ")
            );
        }
        let features = schema
            .iter()
            .filter_map(|feature| {
                position(&feature.name).map(|column| (feature.name.clone(), feature.kind(), column))
            })
            .collect();
        Ok(ColumnPlan {
            id,
            value,
            features,
        })
    }

    pub fn feature_names(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(|(name, _, _)| name.as_str())
    }

    fn row(
        &self,
        row: u64,
        cell: impl Fn(usize) -> Result<Cell, String>,
        columns: &[String],
    ) -> InputRow {
        let text = |column: usize| match cell(column) {
            Ok(Cell::Text(text)) => Ok(text),
            Ok(Cell::Number(number)) => Ok(number.to_string()),
            Ok(Cell::Flag(flag)) => Ok(flag.to_string()),
            Ok(Cell::Missing) => Ok(String::new()),
            Err(message) => Err((column, message)),
        };
        let outcome = (|| {
            let customer_id = self
                .id
                .map(&text)
                .transpose()?
                .unwrap_or_else(|| row.to_string());
            let value = self.value.map(&text).transpose()?;
            let features = self
                .features
                .iter()
                .map(|(_, kind, column)| {
                    let value = cell(*column).map_err(|message| (*column, message))?;
                    Ok(feature_value(value, *kind))
                })
                .collect::<Result<_, (usize, String)>>()?;
            Ok(ReadRow {
                customer_id,
                features,
                value,
            })
        })()
        .map_err(|(column, message): (usize, String)| LocalError {
            customer_id: self
                .id
                .and_then(|id| text(id).ok())
                .unwrap_or_else(|| row.to_string()),
            column: columns.get(column).cloned().unwrap_or_default(),
            message,
        });
        InputRow { row, outcome }
    }
}

/// Types a cell by the schema's kind. Values the kind cannot take are sent as text so
/// that the server's validation names them.
fn feature_value(cell: Cell, kind: pb::FeatureKind) -> pb::FeatureValue {
    use pb::feature_value::Kind;
    let kind = match (cell, kind) {
        (Cell::Missing, _) => None,
        (Cell::Number(number), pb::FeatureKind::Text) => Some(Kind::Text(number.to_string())),
        (Cell::Number(number), _) => Some(Kind::Number(number)),
        (Cell::Flag(flag), _) => Some(Kind::Flag(flag)),
        (Cell::Text(text), pb::FeatureKind::Number | pb::FeatureKind::Unspecified) => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                None
            } else {
                Some(
                    trimmed
                        .parse::<f64>()
                        .map_or(Kind::Text(text), Kind::Number),
                )
            }
        }
        (Cell::Text(text), pb::FeatureKind::Bool) => {
            match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" => Some(Kind::Flag(true)),
                "false" | "no" | "0" => Some(Kind::Flag(false)),
                _ => Some(Kind::Text(text)),
            }
        }
        (Cell::Text(text), pb::FeatureKind::Text) => Some(Kind::Text(text)),
    };
    pb::FeatureValue { kind }
}

/// Rows of one input file, and how far through it the reader is.
pub trait Input: Send {
    fn columns(&self) -> &[String];
    /// The next row, `None` at the end; an error only when the file cannot be read on.
    fn next(&mut self, plan: &ColumnPlan) -> Option<anyhow::Result<InputRow>>;
}

/// How far the reader is, as done / total in the input's own unit (bytes or rows).
#[derive(Debug, Default)]
pub struct ReadProgress {
    pub done: AtomicU64,
    pub total: AtomicU64,
}

impl ReadProgress {
    pub fn fraction(&self) -> f64 {
        let total = self.total.load(Ordering::Relaxed);
        if total == 0 {
            return 0.0;
        }
        self.done.load(Ordering::Relaxed) as f64 / total as f64
    }
}

pub fn open(path: &Path, progress: Arc<ReadProgress>) -> anyhow::Result<Box<dyn Input>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(match FileFormat::of(path) {
        FileFormat::Csv => Box::new(CsvInput::new(file, progress)?),
        FileFormat::Parquet => Box::new(ParquetInput::new(file, progress)?),
    })
}

struct CsvInput {
    reader: csv::Reader<File>,
    columns: Vec<String>,
    record: csv::ByteRecord,
    next_row: u64,
    progress: Arc<ReadProgress>,
}

impl CsvInput {
    fn new(file: File, progress: Arc<ReadProgress>) -> anyhow::Result<CsvInput> {
        progress
            .total
            .store(file.metadata()?.len(), Ordering::Relaxed);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(file);
        let columns = reader
            .headers()
            .context("cannot read the CSV header row")?
            .iter()
            .map(|column| column.trim().to_owned())
            .collect();
        Ok(CsvInput {
            reader,
            columns,
            record: csv::ByteRecord::new(),
            next_row: 0,
            progress,
        })
    }
}

impl Input for CsvInput {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next(&mut self, plan: &ColumnPlan) -> Option<anyhow::Result<InputRow>> {
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => return None,
            Ok(true) => {}
            Err(error) => {
                return Some(Err(anyhow::Error::new(error).context(format!(
                    "cannot read the CSV after data row {}",
                    self.next_row
                ))));
            }
        }
        let row = self.next_row;
        self.next_row += 1;
        self.progress
            .done
            .store(self.reader.position().byte(), Ordering::Relaxed);
        let (record, width) = (&self.record, self.columns.len());
        if record.len() != width {
            let found = record.len();
            return Some(Ok(InputRow {
                row,
                outcome: Err(LocalError {
                    customer_id: plan
                        .id
                        .and_then(|id| record.get(id))
                        .map(|id| String::from_utf8_lossy(id).into_owned())
                        .unwrap_or_else(|| row.to_string()),
                    column: String::new(),
                    message: format!("row {row}: has {found} fields, the header has {width}"),
                }),
            }));
        }
        let columns = &self.columns;
        Some(Ok(plan.row(
            row,
            |column| {
                let bytes = record.get(column).unwrap_or_default();
                std::str::from_utf8(bytes)
                    .map(|text| Cell::Text(text.to_owned()))
                    .map_err(|_| {
                        format!("row {row}: column {} is not valid UTF-8", columns[column])
                    })
            },
            columns,
        )))
    }
}

struct ParquetInput {
    rows: parquet::record::reader::RowIter<'static>,
    columns: Vec<String>,
    next_row: u64,
    progress: Arc<ReadProgress>,
}

impl ParquetInput {
    fn new(file: File, progress: Arc<ReadProgress>) -> anyhow::Result<ParquetInput> {
        let reader = SerializedFileReader::new(file).context("not a readable Parquet file")?;
        let metadata = reader.metadata().file_metadata();
        progress.total.store(
            u64::try_from(metadata.num_rows()).unwrap_or(0),
            Ordering::Relaxed,
        );
        let columns = metadata
            .schema_descr()
            .root_schema()
            .get_fields()
            .iter()
            .map(|field| field.name().to_owned())
            .collect();
        Ok(ParquetInput {
            rows: reader.into_iter(),
            columns,
            next_row: 0,
            progress,
        })
    }
}

impl Input for ParquetInput {
    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn next(&mut self, plan: &ColumnPlan) -> Option<anyhow::Result<InputRow>> {
        let fields: Row = match self.rows.next()? {
            Ok(fields) => fields,
            Err(error) => {
                return Some(Err(anyhow::Error::new(error).context(format!(
                    "cannot read the Parquet file after data row {}",
                    self.next_row
                ))));
            }
        };
        let row = self.next_row;
        self.next_row += 1;
        self.progress.done.store(self.next_row, Ordering::Relaxed);
        let fields = fields.into_columns();
        Some(Ok(plan.row(
            row,
            |column| Ok(fields.get(column).map_or(Cell::Missing, |(_, f)| cell(f))),
            &self.columns,
        )))
    }
}

fn cell(field: &Field) -> Cell {
    match field {
        Field::Null => Cell::Missing,
        Field::Bool(flag) => Cell::Flag(*flag),
        Field::Byte(n) => Cell::Number(f64::from(*n)),
        Field::Short(n) => Cell::Number(f64::from(*n)),
        Field::Int(n) => Cell::Number(f64::from(*n)),
        Field::Long(n) => Cell::Number(*n as f64),
        Field::UByte(n) => Cell::Number(f64::from(*n)),
        Field::UShort(n) => Cell::Number(f64::from(*n)),
        Field::UInt(n) => Cell::Number(f64::from(*n)),
        Field::ULong(n) => Cell::Number(*n as f64),
        Field::Float16(n) => Cell::Number(f64::from(*n)),
        Field::Float(n) => Cell::Number(f64::from(*n)),
        Field::Double(n) => Cell::Number(*n),
        Field::Str(text) => Cell::Text(text.clone()),
        other => Cell::Text(other.to_string()),
    }
}
