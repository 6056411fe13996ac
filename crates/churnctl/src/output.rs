//! How churnctl prints: aligned tables (comfy-table) for people, JSON for scripts, progress
//! bars (indicatif) on standard error.

use std::io::Write;

use serde_json::Value;

/// Prints one line to standard output. A closed pipe (`churnctl … | head`) ends the
/// program quietly, as other command-line tools do, instead of panicking.
pub fn line(text: &str) {
    if writeln!(std::io::stdout().lock(), "{text}").is_err() {
        std::process::exit(0);
    }
}

/// RFC 3339 in UTC (`2026-11-22T18:06:42Z`), from seconds since the Unix epoch.
/// A protobuf timestamp as `utc` writes it; empty when there is none.
pub fn utc_of(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp.map_or_else(String::new, |t| utc(t.seconds))
}

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
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
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
                let mut table = comfy_table::Table::new();
                table
                    .load_preset(comfy_table::presets::NOTHING)
                    .set_header(self.header.clone());
                for row in &self.rows {
                    table.add_row(row.iter().map(cell_text));
                }
                // Columns two spaces apart, flush left, as `kubectl get` prints them.
                for column in table.column_iter_mut() {
                    column.set_padding((0, 2));
                }
                for text in table.lines() {
                    line(text.trim_end());
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

/// A progress bar on standard error (drawn only when it is a terminal), from `template`
/// (indicatif's syntax) over `total` steps.
pub fn progress_bar(total: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("#>-"));
    }
    bar
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_dates() {
        for (seconds, expected) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_795_370_802, "2026-11-22T18:06:42Z"),
            (-1, "1969-12-31T23:59:59Z"),
        ] {
            assert_eq!(super::utc(seconds), expected);
        }
    }
}
