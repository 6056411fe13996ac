//! The prediction log as Parquet for the data team: `URL/date=YYYY-MM-DD/` partitions of
//! zstd-compressed files, one row per prediction. A file's name says which part of its
//! day the export covered (`part-FROM-UNTIL-EXPORT-SEQ.parquet`, FROM and UNTIL in epoch
//! milliseconds), so that exporting a range again replaces exactly what earlier exports
//! wrote there: the range first widens to cover every earlier file it overlaps, the new
//! files are written, and only then are the earlier ones deleted. A failed export deletes
//! what it wrote and leaves the earlier files as they were.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::sync::Arc;

use chrono::DateTime;
use churn_registry::{ExportTarget, ExportedPrediction, Registry, VersionRef};
use futures_util::TryStreamExt;
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use crate::domain::error::ServiceError;
use crate::domain::monitoring::performance::{DAY_MILLIS, utc};

/// Rows per row group, and per file: a file is held in memory until it is written, so
/// these bound the export's memory at any size of log.
const ROW_GROUP_ROWS: usize = 100_000;
const FILE_ROWS: usize = 1_000_000;

const SCHEMA: &str = "message predictions {
    REQUIRED INT64 prediction_id;
    REQUIRED BYTE_ARRAY customer_id (UTF8);
    REQUIRED BYTE_ARRAY model (UTF8);
    REQUIRED INT64 version;
    REQUIRED BYTE_ARRAY alias (UTF8);
    REQUIRED DOUBLE churn_probability;
    REQUIRED BOOLEAN will_churn;
    REQUIRED BYTE_ARRAY risk_band (UTF8);
    REQUIRED INT64 scored_at (TIMESTAMP(MILLIS,true));
}";

/// Which predictions go where.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub since_millis: i64,
    pub until_millis: i64,
    /// A local directory or an object-store URL.
    pub to: String,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub rows: u64,
    pub files: usize,
    /// Earlier files replaced.
    pub replaced: usize,
    /// The range written, widened over earlier files it overlapped.
    pub since_millis: i64,
    pub until_millis: i64,
}

/// How far an export is, for a progress bar.
pub trait ExportProgress {
    fn total(&self, rows: u64);
    fn advance(&self, rows: u64);
}

/// One earlier file: its folder, name and the part of its day it covers.
#[derive(Debug, Clone)]
struct EarlierFile {
    path: String,
    from: i64,
    until: i64,
}

fn folder_of(day_start: i64) -> String {
    let date = DateTime::from_timestamp_millis(day_start)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    format!("date={date}")
}

/// FROM and UNTIL of `part-FROM-UNTIL-...parquet`.
fn covered(name: &str) -> Option<(i64, i64)> {
    let mut parts = name.strip_prefix("part-")?.split('-');
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn day_of(millis: i64) -> i64 {
    millis - millis.rem_euclid(DAY_MILLIS)
}

/// Exports the predictions scored in `[since, until)`, replacing earlier exports of it.
pub async fn export_predictions(
    registry: &Registry,
    request: &ExportRequest,
    progress: &dyn ExportProgress,
) -> Result<ExportSummary, ServiceError> {
    if request.until_millis < request.since_millis {
        return Err(ServiceError::InvalidRequest(format!(
            "--until {} is before --since {}; expected until at or after since",
            utc(request.until_millis),
            utc(request.since_millis)
        )));
    }
    let target = ExportTarget::open(&request.to)?;
    let export_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    // A target that refuses writes is found before anything is read or written.
    let probe = format!(".churnserve-export-{export_id}");
    target.put(&probe, Vec::new()).await?;
    target.delete(&probe).await?;

    let (since, until, earlier) =
        widened(&target, request.since_millis, request.until_millis).await?;
    progress.total(registry.count_predictions(since, until).await?);
    let mut writer = PartitionWriter {
        target: &target,
        registry,
        export_id,
        since,
        until,
        written: Vec::new(),
        bands: BTreeMap::new(),
    };
    let rows = match writer.write_all(progress).await {
        Ok(rows) => rows,
        Err(error) => {
            for path in &writer.written {
                let _ = target.delete(path).await;
            }
            return Err(ServiceError::InvalidRequest(format!(
                "{error}; nothing of this export is left in {target}, and earlier exports are as they were"
            )));
        }
    };
    for file in &earlier {
        if let Err(error) = target.delete(&file.path).await {
            return Err(ServiceError::InvalidRequest(format!(
                "the export is written, but the earlier file {} could not be removed ({error}); remove it, or export the range again",
                file.path
            )));
        }
    }
    Ok(ExportSummary {
        rows,
        files: writer.written.len(),
        replaced: earlier.len(),
        since_millis: since,
        until_millis: until,
    })
}

/// The range widened until it covers every earlier file it overlaps, and those files.
async fn widened(
    target: &ExportTarget,
    mut since: i64,
    mut until: i64,
) -> Result<(i64, i64, Vec<EarlierFile>), ServiceError> {
    let mut listed: BTreeMap<i64, Vec<EarlierFile>> = BTreeMap::new();
    loop {
        let mut day = day_of(since);
        while day < until.max(since + 1) {
            if let Entry::Vacant(unlisted) = listed.entry(day) {
                let folder = folder_of(day);
                let files = target
                    .list(&folder)
                    .await?
                    .into_iter()
                    .filter_map(|name| {
                        let (from, until) = covered(&name)?;
                        Some(EarlierFile {
                            path: format!("{folder}/{name}"),
                            from,
                            until,
                        })
                    })
                    .collect();
                unlisted.insert(files);
            }
            day += DAY_MILLIS;
        }
        let overlapping = || {
            listed
                .values()
                .flatten()
                .filter(|f| f.from < until.max(since + 1) && f.until > since)
        };
        let wider_since = overlapping()
            .map(|f| f.from)
            .min()
            .unwrap_or(since)
            .min(since);
        let wider_until = overlapping()
            .map(|f| f.until)
            .max()
            .unwrap_or(until)
            .max(until);
        if (wider_since, wider_until) == (since, until) {
            let files = overlapping().cloned().collect();
            return Ok((since, until, files));
        }
        (since, until) = (wider_since, wider_until);
    }
}

struct PartitionWriter<'a> {
    target: &'a ExportTarget,
    registry: &'a Registry,
    export_id: String,
    since: i64,
    until: i64,
    /// Paths written by this export.
    written: Vec<String>,
    /// Each version's risk band cuts, read once.
    bands: BTreeMap<(String, u32), [f64; 2]>,
}

impl PartitionWriter<'_> {
    /// Streams the range into day partitions; returns the rows written.
    async fn write_all(&mut self, progress: &dyn ExportProgress) -> Result<u64, ServiceError> {
        let registry = self.registry;
        let mut rows = registry.predictions_between(self.since, self.until);
        let mut group: Vec<ExportedPrediction> = Vec::with_capacity(ROW_GROUP_ROWS);
        let mut open: Option<(i64, ParquetFile)> = None;
        let mut total = 0;
        while let Some(row) = rows.try_next().await? {
            let day = day_of(row.scored_at_millis);
            if open
                .as_ref()
                .is_some_and(|(d, f)| *d != day || f.rows + group.len() >= FILE_ROWS)
            {
                let (day, mut parquet) = open.take().expect("checked");
                self.write_group(&mut parquet, &mut group, progress).await?;
                self.finish(day, parquet).await?;
            }
            let parquet = match &mut open {
                Some((_, parquet)) => parquet,
                None => &mut open.insert((day, ParquetFile::new()?)).1,
            };
            group.push(row);
            total += 1;
            if group.len() == ROW_GROUP_ROWS {
                self.write_group(parquet, &mut group, progress).await?;
            }
        }
        if let Some((day, mut parquet)) = open.take() {
            self.write_group(&mut parquet, &mut group, progress).await?;
            self.finish(day, parquet).await?;
        }
        Ok(total)
    }

    /// Writes `group` as a row group of `parquet`, with its risk bands; `group` is left
    /// empty.
    async fn write_group(
        &mut self,
        parquet: &mut ParquetFile,
        group: &mut Vec<ExportedPrediction>,
        progress: &dyn ExportProgress,
    ) -> Result<(), ServiceError> {
        let rows = group.len() as u64;
        let banded = self.banded(group).await?;
        parquet.write_group(&banded)?;
        progress.advance(rows);
        Ok(())
    }

    /// The rows of `group` with their risk bands; `group` is left empty.
    async fn banded(
        &mut self,
        group: &mut Vec<ExportedPrediction>,
    ) -> Result<Vec<(ExportedPrediction, &'static str)>, ServiceError> {
        let mut banded = Vec::with_capacity(group.len());
        for row in group.drain(..) {
            let key = (row.name.clone(), row.version);
            let cuts = match self.bands.get(&key) {
                Some(cuts) => *cuts,
                None => {
                    let record = self
                        .registry
                        .version(&row.name, &VersionRef::Number(row.version))
                        .await?;
                    let cuts = record.metadata.risk_band_cuts;
                    self.bands.insert(key, cuts);
                    cuts
                }
            };
            let band = if row.probability >= cuts[1] {
                "HIGH"
            } else if row.probability >= cuts[0] {
                "MEDIUM"
            } else {
                "LOW"
            };
            banded.push((row, band));
        }
        Ok(banded)
    }

    async fn finish(&mut self, day: i64, parquet: ParquetFile) -> Result<(), ServiceError> {
        let from = self.since.max(day);
        let until = self.until.min(day + DAY_MILLIS);
        let path = format!(
            "{}/part-{from}-{until}-{}-{:04}.parquet",
            folder_of(day),
            self.export_id,
            self.written.len()
        );
        let bytes = parquet.finish()?;
        self.target.put(&path, bytes).await?;
        self.written.push(path);
        Ok(())
    }
}

/// One column of a row group.
enum Column {
    Int(Vec<i64>),
    Text(Vec<ByteArray>),
    Double(Vec<f64>),
    Bool(Vec<bool>),
}

/// One Parquet file being written in memory.
struct ParquetFile {
    writer: SerializedFileWriter<Vec<u8>>,
    rows: usize,
}

fn parquet_error(error: parquet::errors::ParquetError) -> ServiceError {
    ServiceError::TaskFailed(format!("writing Parquet: {error}"))
}

impl ParquetFile {
    fn new() -> Result<ParquetFile, ServiceError> {
        let schema: Type =
            parquet::schema::parser::parse_message_type(SCHEMA).map_err(parquet_error)?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(Default::default()))
            .set_created_by("churnserve export-predictions".to_owned())
            .build();
        let writer = SerializedFileWriter::new(Vec::new(), Arc::new(schema), Arc::new(properties))
            .map_err(parquet_error)?;
        Ok(ParquetFile { writer, rows: 0 })
    }

    fn write_group(
        &mut self,
        rows: &[(ExportedPrediction, &'static str)],
    ) -> Result<(), ServiceError> {
        if rows.is_empty() {
            return Ok(());
        }
        let text = |cell: fn(&ExportedPrediction) -> &str| {
            Column::Text(rows.iter().map(|(r, _)| ByteArray::from(cell(r))).collect())
        };
        let int = |cell: fn(&ExportedPrediction) -> i64| {
            Column::Int(rows.iter().map(|(r, _)| cell(r)).collect())
        };
        let columns = [
            int(|r| r.id),
            text(|r| &r.customer_id),
            text(|r| &r.name),
            int(|r| i64::from(r.version)),
            text(|r| &r.alias),
            Column::Double(rows.iter().map(|(r, _)| r.probability).collect()),
            Column::Bool(rows.iter().map(|(r, _)| r.will_churn).collect()),
            Column::Text(
                rows.iter()
                    .map(|(_, band)| ByteArray::from(*band))
                    .collect(),
            ),
            int(|r| r.scored_at_millis),
        ];
        let mut group = self.writer.next_row_group().map_err(parquet_error)?;
        for data in columns {
            let mut column = group.next_column().map_err(parquet_error)?.ok_or_else(|| {
                ServiceError::TaskFailed(
                    "the Parquet schema has fewer columns than written".to_owned(),
                )
            })?;
            let written = match &data {
                Column::Int(values) => column.typed::<Int64Type>().write_batch(values, None, None),
                Column::Text(values) => column
                    .typed::<ByteArrayType>()
                    .write_batch(values, None, None),
                Column::Double(values) => {
                    column.typed::<DoubleType>().write_batch(values, None, None)
                }
                Column::Bool(values) => column.typed::<BoolType>().write_batch(values, None, None),
            };
            written.map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
        }
        group.close().map_err(parquet_error)?;
        self.rows += rows.len();
        Ok(())
    }

    fn finish(self) -> Result<Vec<u8>, ServiceError> {
        self.writer.into_inner().map_err(parquet_error)
    }
}
