//! How churnctl prints: aligned tables for people, JSON for scripts.

use serde_json::Value;

/// The `--output` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

/// Rows of cells under a header, printed as aligned columns or as one JSON object a line.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<Value>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<Value>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    pub fn print(&self, format: Format) {
        match format {
            Format::Json => {
                for row in &self.rows {
                    let object: serde_json::Map<String, Value> = self
                        .header
                        .iter()
                        .map(|h| h.to_lowercase().replace(' ', "_"))
                        .zip(row.iter().cloned())
                        .collect();
                    println!("{}", Value::Object(object));
                }
            }
            Format::Table => {
                let text: Vec<Vec<String>> = self
                    .rows
                    .iter()
                    .map(|row| row.iter().map(cell_text).collect())
                    .collect();
                let widths: Vec<usize> = (0..self.header.len())
                    .map(|i| {
                        text.iter()
                            .map(|row| row[i].chars().count())
                            .chain([self.header[i].len()])
                            .max()
                            .unwrap_or(0)
                    })
                    .collect();
                let line = |cells: Vec<&str>| {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    println!("{}", padded.join("  ").trim_end());
                };
                line(self.header.clone());
                for row in &text {
                    line(row.iter().map(String::as_str).collect());
                }
            }
        }
    }
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        Value::Array(items) => items.iter().map(cell_text).collect::<Vec<_>>().join(","),
        Value::Number(number) => match number.as_f64() {
            Some(f) if !number.is_i64() && !number.is_u64() => format!("{f:.4}"),
            _ => number.to_string(),
        },
        other => other.to_string(),
    }
}

/// Shows upload progress on standard error, one line redrawn in place.
#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    started: std::time::Instant,
}

impl Progress {
    pub fn new(label: String, total: u64) -> Progress {
        Progress {
            label,
            total,
            done: 0,
            started: std::time::Instant::now(),
        }
    }

    pub fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        let percent = if self.total == 0 {
            100.0
        } else {
            self.done as f64 * 100.0 / self.total as f64
        };
        let filled = (percent / 5.0) as usize;
        let rate = self.done as f64 / 1_048_576.0 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{} [{}{}] {percent:5.1}%  {:.1}/{:.1} MiB  {rate:.1} MiB/s",
            self.label,
            "#".repeat(filled),
            " ".repeat(20 - filled.min(20)),
            self.done as f64 / 1_048_576.0,
            self.total as f64 / 1_048_576.0,
        );
    }

    pub fn finish(self) {
        eprintln!();
    }
}
