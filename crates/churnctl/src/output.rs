//! How churnctl prints: aligned tables for people, JSON for scripts.

use std::io::Write;

use serde_json::Value;

/// Prints one line to standard output. A closed pipe (`churnctl … | head`) ends the
/// program quietly, as other command-line tools do, instead of panicking.
pub fn line(text: &str) {
    if writeln!(std::io::stdout().lock(), "{text}").is_err() {
        std::process::exit(0);
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from seconds since the Unix epoch.
pub fn utc(seconds: i64) -> String {
    let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Howard Hinnant's civil-from-days algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

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
                    line(&Value::Object(object).to_string());
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
                let print_row = |cells: Vec<&str>| {
                    let padded: Vec<String> = cells
                        .iter()
                        .zip(&widths)
                        .map(|(c, w)| format!("{c:<w$}"))
                        .collect();
                    line(padded.join("  ").trim_end());
                };
                print_row(self.header.clone());
                for row in &text {
                    print_row(row.iter().map(String::as_str).collect());
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

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        for (seconds, expected) in [
            (0, "1970-01-01 00:00:00"),
            (951_782_400, "2000-02-29 00:00:00"),
            (1_795_370_802, "2026-11-22 18:06:42"),
            (-1, "1969-12-31 23:59:59"),
        ] {
            assert_eq!(super::utc(seconds), expected);
        }
    }
}
