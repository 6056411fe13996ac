//! The stream's two wire forms: `ScoreArrow` (a batch's columns as an Arrow IPC stream,
//! the answer's record batch back as the `RowResult`s the journal takes), and
//! `ScoreStream` when reasons are asked for, which Arrow's answer does not carry.

use std::sync::Arc;

use anyhow::{Context, bail};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, UInt32Type};
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use churn_api::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

use crate::session::{Session, status};

/// Where a job's batches go, and the answers they get.
pub(super) enum Wire {
    Arrow(mpsc::Sender<pb::ScoreArrowRequest>),
    Messages {
        requests: mpsc::Sender<pb::ScoreBatchRequest>,
        top_reasons: u32,
    },
}

pub(super) type Answers =
    std::pin::Pin<Box<dyn Stream<Item = anyhow::Result<Vec<pb::RowResult>>> + Send>>;

impl Wire {
    pub(super) async fn open(
        session: &Session,
        top_reasons: u32,
    ) -> anyhow::Result<(Wire, Answers)> {
        let mut scoring = session.scoring();
        if top_reasons == 0 {
            let (requests, receiver) = mpsc::channel(2);
            let answers = scoring
                .score_arrow(session.request(ReceiverStream::new(receiver))?)
                .await
                .map_err(status)?
                .into_inner()
                .map(|answer| answer.map_err(status).and_then(|a| results(&a)));
            return Ok((Wire::Arrow(requests), Box::pin(answers)));
        }
        let (requests, receiver) = mpsc::channel(2);
        let answers = scoring
            .score_stream(session.request(ReceiverStream::new(receiver))?)
            .await
            .map_err(status)?
            .into_inner()
            .map(|answer| answer.map(|a| a.results).map_err(status));
        Ok((
            Wire::Messages {
                requests,
                top_reasons,
            },
            Box::pin(answers),
        ))
    }

    /// Sends one batch (the first names the model and the first row); false once the
    /// stream is gone.
    pub(super) async fn send(
        &self,
        columns: pb::CustomerColumns,
        start: Option<(pb::ModelRef, u32)>,
    ) -> anyhow::Result<bool> {
        let (model, first_row) = start.map_or((None, 0), |(m, row)| (Some(m), row));
        Ok(match self {
            Wire::Arrow(requests) => {
                let request = pb::ScoreArrowRequest {
                    model,
                    arrow_ipc: encode(&columns).context("encoding a batch as Arrow")?,
                    first_row,
                };
                requests.send(request).await.is_ok()
            }
            Wire::Messages {
                requests,
                top_reasons,
            } => {
                let request = pb::ScoreBatchRequest {
                    model,
                    columns: Some(columns),
                    top_reasons: *top_reasons,
                    first_row,
                    ..Default::default()
                };
                requests.send(request).await.is_ok()
            }
        })
    }
}

/// The columns as Arrow: numbers as float64 (NaN is missing, as in `NumberColumn`), texts
/// as utf8, flags as booleans; a column of mixed kinds as the utf8 a CSV holds, which the
/// server reads back by the feature's kind exactly (a number's shortest round-trip text).
fn encode(columns: &pb::CustomerColumns) -> anyhow::Result<Vec<u8>> {
    use pb::feature_column::Values;
    use pb::feature_value::Kind;
    let mut arrays: Vec<(&str, ArrayRef)> = vec![(
        "customer_id",
        Arc::new(StringArray::from_iter_values(&columns.customer_ids)),
    )];
    for column in &columns.features {
        let array: ArrayRef = match &column.values {
            Some(Values::Numbers(numbers)) => Arc::new(Float64Array::from(numbers.values.clone())),
            Some(Values::Texts(texts)) => Arc::new(StringArray::from_iter_values(&texts.values)),
            Some(Values::Flags(flags)) => Arc::new(BooleanArray::from(flags.values.clone())),
            Some(Values::Mixed(mixed)) => Arc::new(
                mixed
                    .values
                    .iter()
                    .map(|cell| match &cell.kind {
                        Some(Kind::Number(number)) => Some(number.to_string()),
                        Some(Kind::Text(text)) => Some(text.clone()),
                        Some(Kind::Flag(flag)) => Some(flag.to_string()),
                        None => None,
                    })
                    .collect::<StringArray>(),
            ),
            None => continue,
        };
        arrays.push((&column.name, array));
    }
    let batch = RecordBatch::try_from_iter(arrays)?;
    let mut writer = arrow_ipc::writer::StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(&batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// The rows of one answer, as `ScoreStream` would have sent them.
fn results(answer: &pb::ScoreArrowResponse) -> anyhow::Result<Vec<pb::RowResult>> {
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(&answer.arrow_ipc), None)
            .context("the server's answer is not an Arrow IPC stream")?;
    let mut results = Vec::new();
    for batch in reader {
        let batch = batch.context("the server's answer holds a broken record batch")?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .with_context(|| format!("the server's answer has no `{name}` column"))
        };
        let rows = column("row")?.as_primitive::<UInt32Type>();
        let probability = column("churn_probability")?.as_primitive::<Float64Type>();
        let will_churn = column("will_churn")?.as_boolean();
        let band = column("risk_band")?.as_string::<i32>();
        let feature = column("error_feature")?.as_string::<i32>();
        let error = column("error")?.as_string::<i32>();
        for i in 0..batch.num_rows() {
            let outcome = if error.is_valid(i) {
                pb::row_result::Outcome::Error(pb::RowError {
                    feature: feature.value(i).to_owned(),
                    message: error.value(i).to_owned(),
                })
            } else {
                let Some(risk_band) = pb::RiskBand::from_str_name(band.value(i)) else {
                    bail!("the server sent risk band {:?}", band.value(i));
                };
                pb::row_result::Outcome::Prediction(pb::Prediction {
                    churn_probability: probability.value(i),
                    will_churn: will_churn.value(i),
                    risk_band: risk_band.into(),
                    ..Default::default()
                })
            };
            // The job scores one pinned version, never through a split.
            results.push(pb::RowResult {
                row: rows.value(i),
                outcome: Some(outcome),
                served_by: None,
            });
        }
    }
    Ok(results)
}
