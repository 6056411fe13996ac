//! `churnctl score-file`: a whole customer file through `ScoreArrow` (`ScoreStream` when
//! reasons are asked for), pinned to one version, into a CSV or Parquet file of scores,
//! with rejected rows in a side file.
//!
//! A reader thread parses the file into batches; the stream sends them while earlier
//! answers come back; each answer is appended to the journal (see `journal`) before the
//! next is read, and the output is written from the journal at the end. Memory is bounded
//! by the few batches in flight, whatever the file's size.

mod batches;
mod input;
mod journal;
mod output;
mod wire;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use churn_api::v1 as pb;
use clap::Args;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;

use crate::customers::reasons_text;
use crate::output::{Format, Table, line, progress_bar};
use crate::reference::ModelArg;
use crate::session::{Session, status};
use batches::{PreparedBatch, RowSlot, read_batches};
use input::{ColumnPlan, ReadProgress};
use journal::{Entry, JobHeader, JournalWriter, Progress};
use output::{Contact, OutputShape};
use wire::Wire;

/// Batches parsed ahead of the stream: enough to keep the server busy, few enough to
/// bound the client's memory.
const BATCHES_AHEAD: usize = 4;
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct ScoreFile {
    /// Customers: CSV with a header row, or Parquet (`.parquet`, `.pq`); columns by the
    /// model's raw feature names, other columns ignored.
    input: PathBuf,
    /// The scores: CSV, or Parquet when the name ends in `.parquet` / `.pq`.
    #[arg(value_name = "OUTPUT")]
    scores: PathBuf,
    /// The model: NAME, NAME@ALIAS, NAME/VERSION, models:/NAME@ALIAS or
    /// models:/NAME/VERSION; default: the server's default model.
    #[arg(long, default_value = "")]
    model: ModelArg,
    /// Exact version; default: the alias `production` at the start of the job.
    #[arg(long, conflicts_with = "alias")]
    version: Option<u32>,
    /// Alias, resolved once at the start: the whole job is scored by that version.
    #[arg(long)]
    alias: Option<String>,
    /// Column holding the customer id; default: `customer_id`, `customerid` or `id`,
    /// else the row number.
    #[arg(long)]
    id_column: Option<String>,
    /// Customers per stream message.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    batch_rows: u32,
    /// Also write each customer's N largest reasons.
    #[arg(long, default_value_t = 0)]
    top_reasons: u32,
    /// Where rejected rows go, with their error; default: the output's name with
    /// `.errors.csv`.
    #[arg(long)]
    errors: Option<PathBuf>,
    /// Continue an interrupted job from its journal (`OUTPUT.partial`).
    #[arg(long)]
    resume: bool,
    /// Write only the N riskiest customers, riskiest first.
    #[arg(long)]
    top: Option<usize>,
    /// Weigh risk by this column: adds `value_at_risk` = probability × value × horizon,
    /// which `--top` then ranks by (e.g. `monthlycharges`).
    #[arg(long)]
    value_column: Option<String>,
    /// Periods the value column covers (e.g. 12 months of monthly charges).
    #[arg(long, default_value_t = 1.0, requires = "value_column")]
    horizon: f64,
    /// `profit`: add a `contact` column, true for the customers a retention campaign
    /// should contact: the riskiest (by value at risk with --value-column) fraction that
    /// the version's latest evaluation found most profitable (its mpc_fraction), or the
    /// riskiest --budget N.
    #[arg(long, value_parser = ["profit"])]
    target: Option<String>,
    /// With --target profit: contact this many customers.
    #[arg(long, requires = "target")]
    budget: Option<u64>,
    /// No progress line, even on a terminal.
    #[arg(long)]
    quiet: bool,
}

pub async fn score_file(session: &Session, args: ScoreFile, format: Format) -> anyhow::Result<()> {
    let started = Instant::now();
    let journal_path = with_suffix(&args.scores, ".partial");
    let errors_path = args
        .errors
        .clone()
        .unwrap_or_else(|| args.scores.with_extension("errors.csv"));
    let input_bytes = std::fs::metadata(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?
        .len();
    let (mut journal, header, done) = if journal_path.exists() {
        if !args.resume {
            bail!(
                "{} holds an interrupted job: pass --resume to continue it, or delete it to start over",
                journal_path.display()
            );
        }
        let (journal, header, done) = JournalWriter::resume(&journal_path)?;
        same_job(&header, &args, input_bytes)?;
        (journal, header, done)
    } else {
        if args.resume && args.scores.exists() {
            eprintln!("nothing to resume: {} is complete", args.scores.display());
            return Ok(());
        }
        let model = args.model.with_flags(args.version, args.alias.as_deref())?;
        let version = version(session, model.to_proto()).await?;
        let header = JobHeader::new(
            args.input.display().to_string(),
            input_bytes,
            &version,
            args.top_reasons,
            args.id_column.clone(),
            args.value_column.clone(),
        );
        (
            JournalWriter::create(&journal_path, &header)?,
            header,
            Progress::default(),
        )
    };
    let pinned = version(
        session,
        pb::ModelRef {
            name: header.model.clone(),
            version: header.version,
            alias: String::new(),
        },
    )
    .await?;
    if pinned.sha256 != header.sha256 {
        bail!(
            "{} version {} is no longer the model this job started with",
            header.model,
            header.version
        );
    }
    let contact = match (&args.target, args.budget) {
        (None, _) => None,
        (Some(_), Some(budget)) => Some(Contact::Budget(budget)),
        (Some(_), None) => Some(Contact::Fraction(
            most_profitable_fraction(session, &header).await?,
        )),
    };
    let scored_now = stream_rows(
        session,
        &args,
        &header,
        &pinned.features,
        &mut journal,
        done,
    )
    .await?;
    drop(journal);
    let shape = OutputShape {
        reasons: header.top_reasons > 0,
        horizon: header.value_column.as_ref().map(|_| args.horizon),
        top: args.top,
        contact,
    };
    let totals = output::finish(&journal_path, &header, &args.scores, &errors_path, &shape)?;
    std::fs::remove_file(&journal_path)?;
    let elapsed = started.elapsed().as_secs_f64();
    let mut summary = vec![
        ("output", json!(args.scores.display().to_string())),
        ("model", json!(header.model)),
        ("version", json!(header.version)),
        ("rows", json!(totals.rows)),
        ("scored", json!(totals.scored)),
        ("rejected", json!(totals.rejected)),
        (
            "contacted",
            contact.map_or(Value::Null, |_| json!(totals.contacted)),
        ),
        (
            "side_file",
            if totals.rejected > 0 {
                json!(errors_path.display().to_string())
            } else {
                Value::Null
            },
        ),
        ("resumed_at_row", json!(done.rows)),
        ("elapsed_s", json!((elapsed * 1000.0).round() / 1000.0)),
        (
            "rows_per_s",
            json!((scored_now as f64 / elapsed).round() as u64),
        ),
        (
            "peak_rss_mib",
            peak_rss_mib().map_or(Value::Null, |mib| json!(mib)),
        ),
    ];
    summary.extend(totals.bands.iter().map(|(band, count)| {
        let key: &'static str = match band.as_str() {
            "LOW" => "band_low",
            "MEDIUM" => "band_medium",
            "HIGH" => "band_high",
            _ => "band_other",
        };
        (key, json!(count))
    }));
    match format {
        Format::Json => line(
            &Value::Object(
                summary
                    .into_iter()
                    .map(|(key, value)| (key.to_owned(), value))
                    .collect(),
            )
            .to_string(),
        ),
        Format::Table => {
            let mut table = Table::new(&["SUMMARY", "VALUE"]);
            for (key, value) in summary {
                table.row(vec![json!(key), value]);
            }
            table.print(format);
        }
    }
    Ok(())
}

/// This process's peak resident memory, where the OS reports it (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024)
}

/// The fraction of customers that the pinned version's latest evaluation found most
/// profitable to contact (its `mpc_fraction`).
async fn most_profitable_fraction(session: &Session, header: &JobHeader) -> anyhow::Result<f64> {
    let request = pb::ListEvaluationsRequest {
        name: header.model.clone(),
        version: header.version,
    };
    let evaluations = session
        .registry()
        .list_evaluations(session.request(request)?)
        .await
        .map_err(status)?
        .into_inner()
        .evaluations;
    evaluations
        .iter()
        .find_map(|e| e.metrics.as_ref()?.profit.as_ref())
        .map(|profit| profit.mpc_fraction)
        .with_context(|| {
            format!(
                "--target profit: {} version {} has no evaluation with a campaign profit; run `churnctl evaluate {}/{} --dataset NAME` first, or give --budget N",
                header.model, header.version, header.model, header.version
            )
        })
}

async fn version(session: &Session, model: pb::ModelRef) -> anyhow::Result<pb::ModelVersion> {
    session
        .registry()
        .get_model_version(session.request(pb::GetModelVersionRequest { model: Some(model) })?)
        .await
        .map_err(status)
        .map(tonic::Response::into_inner)
}

/// A resumed job must read the same file with the same settings.
fn same_job(header: &JobHeader, args: &ScoreFile, input_bytes: u64) -> anyhow::Result<()> {
    let differences: Vec<String> = [
        (
            "input",
            header.input.clone(),
            args.input.display().to_string(),
        ),
        (
            "input size",
            header.input_bytes.to_string(),
            input_bytes.to_string(),
        ),
        (
            "--top-reasons",
            header.top_reasons.to_string(),
            args.top_reasons.to_string(),
        ),
        (
            "--id-column",
            format!("{:?}", header.id_column),
            format!("{:?}", args.id_column),
        ),
        (
            "--value-column",
            format!("{:?}", header.value_column),
            format!("{:?}", args.value_column),
        ),
    ]
    .into_iter()
    .filter(|(_, started, now)| started != now)
    .map(|(what, started, now)| format!("{what} was {started}, now {now}"))
    .collect();
    if !differences.is_empty() {
        bail!(
            "this is not the interrupted job: {}; rerun it as it was started, or delete its journal",
            differences.join("; ")
        );
    }
    Ok(())
}

/// A batch as sent: which input rows went to the server, which failed locally.
enum Pending {
    Batch(Vec<RowSlot>),
    ReadFailed(anyhow::Error),
}

/// Streams the rows after `done` and journals every answer; returns the rows scored.
async fn stream_rows(
    session: &Session,
    args: &ScoreFile,
    header: &JobHeader,
    schema: &[pb::FeatureSpec],
    journal: &mut JournalWriter,
    done: Progress,
) -> anyhow::Result<u64> {
    let first_row = u32::try_from(done.stream_rows).context("more than 2^32 rows in one job")?;
    let read_progress = Arc::new(ReadProgress::default());
    let mut input = input::open(&args.input, Arc::clone(&read_progress))?;
    let plan = ColumnPlan::new(
        input.columns(),
        schema,
        header.id_column.as_deref(),
        header.value_column.as_deref(),
    )?;
    let (batches, mut batch_receiver) = mpsc::channel(BATCHES_AHEAD);
    let batch_rows = args.batch_rows as usize;
    let skip = done.rows;
    let reader = tokio::task::spawn_blocking(move || {
        read_batches(input.as_mut(), &plan, skip, batch_rows, &batches);
    });

    let model = pb::ModelRef {
        name: header.model.clone(),
        version: header.version,
        alias: String::new(),
    };
    let (requests, mut responses) = Wire::open(session, header.top_reasons).await?;
    let (pending, mut pending_receiver) = mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut first = true;
        while let Some(batch) = batch_receiver.recv().await {
            let PreparedBatch { slots, columns } = match batch {
                Ok(batch) => batch,
                Err(error) => {
                    let _ = pending.send(Pending::ReadFailed(error));
                    return;
                }
            };
            if let Some(columns) = columns {
                let start = first.then(|| (model.clone(), first_row));
                first = false;
                match requests.send(columns, start).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(error) => {
                        let _ = pending.send(Pending::ReadFailed(error));
                        return;
                    }
                }
            }
            if pending.send(Pending::Batch(slots)).is_err() {
                return;
            }
        }
    });

    let mut progress = done;
    let mut scored_now = 0;
    let mut bar = ProgressLine::new(!args.quiet && std::io::stderr().is_terminal());
    while let Some(batch) = pending_receiver.recv().await {
        let slots = match batch {
            Pending::Batch(slots) => slots,
            Pending::ReadFailed(error) => {
                journal.flush()?;
                return Err(error.context(interrupted(&progress)));
            }
        };
        let mut results = Vec::new().into_iter();
        if slots
            .iter()
            .any(|slot| matches!(slot, RowSlot::Sent { .. }))
        {
            results = match responses.next().await {
                Some(Ok(results)) => results.into_iter(),
                None => {
                    journal.flush()?;
                    bail!(
                        "the server ended the stream early; {}",
                        interrupted(&progress)
                    );
                }
                Some(Err(failure)) => {
                    journal.flush()?;
                    return Err(failure.context(interrupted(&progress)));
                }
            };
        }
        for slot in slots {
            let entry = match slot {
                RowSlot::Local { row, error } => Entry::Rejected {
                    row,
                    customer_id: error.customer_id,
                    feature: error.column,
                    error: error.message,
                    by_server: false,
                },
                RowSlot::Sent {
                    row,
                    customer_id,
                    value,
                } => {
                    let result = results.next().with_context(|| {
                        format!(
                            "the server answered fewer rows than sent; {}",
                            interrupted(&progress)
                        )
                    })?;
                    if u64::from(result.row) != progress.stream_rows {
                        bail!(
                            "the server numbered row {} where {} was expected",
                            result.row,
                            progress.stream_rows
                        );
                    }
                    entry(row, customer_id, result, value)?
                }
            };
            if matches!(entry, Entry::Scored { .. }) {
                scored_now += 1;
            }
            progress.count(&entry);
            journal.append(&entry)?;
        }
        journal.flush()?;
        bar.draw(progress.rows - done.rows, read_progress.fraction());
    }
    bar.finish();
    pump.await.context("the request task failed")?;
    reader.await.context("the reader thread failed")?;
    Ok(scored_now)
}

fn interrupted(progress: &Progress) -> String {
    format!(
        "{} rows are done and journaled: rerun the same command with --resume to continue",
        progress.rows
    )
}

fn entry(
    row: u64,
    customer_id: String,
    result: pb::RowResult,
    value: Option<String>,
) -> anyhow::Result<Entry> {
    Ok(match result.outcome {
        Some(pb::row_result::Outcome::Prediction(prediction)) => Entry::Scored {
            row,
            customer_id,
            probability: prediction.churn_probability.to_string(),
            will_churn: prediction.will_churn,
            band: prediction.risk_band().as_str_name().to_owned(),
            reasons: (!prediction.top_reasons.is_empty())
                .then(|| reasons_text(&prediction.top_reasons)),
            value,
        },
        Some(pb::row_result::Outcome::Error(error)) => {
            // The server numbers rows by stream position; the side file says the input row.
            let prefix = format!("row {}: ", result.row);
            Entry::Rejected {
                row,
                customer_id,
                feature: error.feature,
                error: error
                    .message
                    .strip_prefix(&prefix)
                    .unwrap_or(&error.message)
                    .to_owned(),
                by_server: true,
            }
        }
        None => bail!("the server sent row {} without an outcome", result.row),
    })
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// `percent · rows · rows/s · ETA` as a progress bar on standard error.
struct ProgressLine {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
    drawn: Instant,
    /// When the first answer came and how far the reader was: the ETA's baseline, so a
    /// resumed job's skipped rows do not count as speed.
    baseline: Option<(Instant, f64)>,
}

/// Steps of the bar: the fraction of the input read, in thousandths.
const PROGRESS_STEPS: u64 = 1000;

impl ProgressLine {
    fn new(enabled: bool) -> ProgressLine {
        let now = Instant::now();
        ProgressLine {
            bar: enabled
                .then(|| progress_bar(PROGRESS_STEPS, "scoring [{bar:20}] {percent:>3}%  {msg}")),
            started: now,
            drawn: now,
            baseline: None,
        }
    }

    fn draw(&mut self, rows: u64, fraction: f64) {
        let Some(bar) = &self.bar else { return };
        if self.drawn.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.drawn = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let (since, start) = *self.baseline.get_or_insert((Instant::now(), fraction));
        let eta = if fraction > start {
            let seconds = since.elapsed().as_secs_f64() * (1.0 - fraction) / (fraction - start);
            format!("{seconds:.0} s")
        } else {
            "-".to_owned()
        };
        bar.set_position((fraction * PROGRESS_STEPS as f64) as u64);
        bar.set_message(format!(
            "{rows} rows  {:.0} rows/s  ETA {eta}",
            rows as f64 / elapsed.max(1e-3)
        ));
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish();
        }
    }
}
