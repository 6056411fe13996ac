//! The job's journal, `<output>.partial`: a JSON header naming the job, then one JSON
//! line per input row in input order, appended and flushed as the server answers. It is
//! the job's only state: `--resume` keeps its complete lines (a line cut by a crash is
//! dropped) and carries on after the last one, and the output is built from it at the
//! end, so an interrupted and resumed job writes exactly what an uninterrupted one does.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The journal format this client writes and reads.
const JOURNAL_FORMAT: u32 = 1;

/// What the job is; a resumed job must be the same one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobHeader {
    pub journal: u32,
    pub input: String,
    pub input_bytes: u64,
    pub model: String,
    pub version: u32,
    pub sha256: String,
    pub top_reasons: u32,
    pub id_column: Option<String>,
    pub value_column: Option<String>,
}

impl JobHeader {
    pub fn new(
        input: String,
        input_bytes: u64,
        version: &churn_api::v1::ModelVersion,
        top_reasons: u32,
        id_column: Option<String>,
        value_column: Option<String>,
    ) -> JobHeader {
        JobHeader {
            journal: JOURNAL_FORMAT,
            input,
            input_bytes,
            model: version.name.clone(),
            version: version.version,
            sha256: version.sha256.clone(),
            top_reasons,
            id_column,
            value_column,
        }
    }
}

/// One input row's outcome.
#[derive(Debug, Clone, PartialEq)]
pub enum Entry {
    Scored {
        row: u64,
        customer_id: String,
        /// Formatted once, with Rust's shortest round-trip notation, so that every output
        /// written from the journal carries the same digits.
        probability: String,
        will_churn: bool,
        band: String,
        reasons: Option<String>,
        value: Option<String>,
    },
    Rejected {
        row: u64,
        customer_id: String,
        feature: String,
        error: String,
        /// Whether the row went to the server (and so took a stream row number).
        by_server: bool,
    },
}

impl Entry {
    pub fn row(&self) -> u64 {
        match self {
            Entry::Scored { row, .. } | Entry::Rejected { row, .. } => *row,
        }
    }

    fn to_line(&self) -> Line {
        match self.clone() {
            Entry::Scored {
                row,
                customer_id,
                probability,
                will_churn,
                band,
                reasons,
                value,
            } => Line {
                row,
                id: customer_id,
                p: Some(probability),
                churn: Some(will_churn),
                band: Some(band),
                reasons,
                value,
                ..Line::default()
            },
            Entry::Rejected {
                row,
                customer_id,
                feature,
                error,
                by_server,
            } => Line {
                row,
                id: customer_id,
                feature: Some(feature),
                error: Some(error),
                by_server: Some(by_server),
                ..Line::default()
            },
        }
    }

    fn from_line(line: Line) -> Option<Entry> {
        Some(match line.error {
            Some(error) => Entry::Rejected {
                row: line.row,
                customer_id: line.id,
                feature: line.feature?,
                error,
                by_server: line.by_server?,
            },
            None => Entry::Scored {
                row: line.row,
                customer_id: line.id,
                probability: line.p?,
                will_churn: line.churn?,
                band: line.band?,
                reasons: line.reasons,
                value: line.value,
            },
        })
    }
}

/// One journal line: an [`Entry`] flattened, absent fields left out.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Line {
    row: u64,
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    churn: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    band: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reasons: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    feature: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    by_server: Option<bool>,
}

fn parse_entry(line: &str) -> Option<Entry> {
    serde_json::from_str(line).ok().and_then(Entry::from_line)
}

/// How far a journal got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Input rows with an outcome: the next row to read.
    pub rows: u64,
    /// Rows the server numbered: the next stream's `first_row`.
    pub stream_rows: u64,
}

impl Progress {
    pub fn count(&mut self, entry: &Entry) {
        self.rows += 1;
        if !matches!(
            entry,
            Entry::Rejected {
                by_server: false,
                ..
            }
        ) {
            self.stream_rows += 1;
        }
    }
}

/// An open journal, appending.
#[derive(Debug)]
pub struct JournalWriter {
    file: BufWriter<File>,
}

impl JournalWriter {
    pub fn create(path: &Path, header: &JobHeader) -> anyhow::Result<JournalWriter> {
        let file =
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let mut writer = JournalWriter {
            file: BufWriter::new(file),
        };
        serde_json::to_writer(&mut writer.file, header)?;
        writeln!(writer.file)?;
        writer.flush()?;
        Ok(writer)
    }

    /// Reopens an interrupted journal: drops a line the crash cut short, checks that the
    /// rows run 0, 1, 2… and returns its header and how far it got.
    pub fn resume(path: &Path) -> anyhow::Result<(JournalWriter, JobHeader, Progress)> {
        let unreadable = || format!("{} is not a churnctl journal", path.display());
        let mut reader = BufReader::new(
            File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        );
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let header: JobHeader = serde_json::from_str(&line)
            .ok()
            .filter(|header: &JobHeader| header.journal == JOURNAL_FORMAT)
            .with_context(unreadable)?;
        let mut complete = line.len() as u64;
        let mut progress = Progress::default();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 || !line.ends_with('\n') {
                break;
            }
            let entry = parse_entry(&line)
                .with_context(|| format!("{}: entry {}", unreadable(), progress.rows))?;
            if entry.row() != progress.rows {
                bail!(
                    "{}: entry for row {} where row {} was expected",
                    unreadable(),
                    entry.row(),
                    progress.rows
                );
            }
            progress.count(&entry);
            complete += line.len() as u64;
        }
        let mut file = OpenOptions::new().write(true).open(path)?;
        file.set_len(complete)?;
        file.seek(SeekFrom::End(0))?;
        Ok((
            JournalWriter {
                file: BufWriter::new(file),
            },
            header,
            progress,
        ))
    }

    pub fn append(&mut self, entry: &Entry) -> anyhow::Result<()> {
        serde_json::to_writer(&mut self.file, &entry.to_line())?;
        writeln!(self.file)?;
        Ok(())
    }

    /// Hands what was appended to the OS: a killed client loses nothing acknowledged.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.file.flush().context("cannot write the journal")
    }
}

/// Reads a finished journal's entries in order.
pub fn entries(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Entry>>> {
    let mut lines = BufReader::new(File::open(path)?).lines();
    lines.next();
    Ok(lines.map(|line| parse_entry(&line?).context("a journal entry is unreadable")))
}
