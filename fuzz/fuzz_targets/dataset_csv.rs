#![no_main]
//! Arbitrary bytes as an uploaded CSV dataset, read as an upload reads it: a summary whose
//! counts add up, or an error, never a panic.

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Upload<'a> {
    label_column: &'a str,
    positive_label: &'a str,
    csv: &'a [u8],
}

fuzz_target!(|upload: Upload<'_>| {
    // The usual labels half of the time, so most inputs get past the header check.
    let (label, positive) = if upload.label_column.len() % 2 == 0 {
        ("churn", "Yes")
    } else {
        (upload.label_column, upload.positive_label)
    };
    if let Ok(summary) = churn_registry::summarize_csv(upload.csv, label, positive) {
        assert!(summary.positives <= summary.rows);
        assert!(summary.columns.iter().any(|c| c == label));
    }
});
