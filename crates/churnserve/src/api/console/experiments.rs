//! The page of one experiment (an alias's latest traffic split): its arms, weights and
//! dates, each arm's churn rate with its interval and realized ROC curve, and each arm
//! against the first with the p-values and the labelled customers an honest stop needs.

use maud::{Markup, html};

use super::charts::{self, LineChart, Point, Series, number};
use super::pages::{experiment_href, layout, model_href, utc, version_href};
use crate::domain::monitoring::experiments::{ArmContrast, ExperimentReport};

/// The significance level the page reads p-values at.
const ALPHA: f64 = 0.05;

pub fn experiment(report: &ExperimentReport) -> Markup {
    let split = &report.split;
    let name = &split.name;
    let roc: Vec<Series> = report
        .arms
        .iter()
        .filter_map(|arm| {
            let metrics = arm.realized.as_ref()?;
            Some(Series {
                name: format!("v{}", arm.version),
                points: metrics
                    .roc_curve
                    .iter()
                    .map(|p| Point {
                        x: p.x,
                        y: p.y,
                        cells: vec![number(p.x), number(p.y), number(p.threshold)],
                    })
                    .collect(),
            })
        })
        .collect();
    let body = html! {
        p #split {
            "Alias " strong { (split.alias) } " split since " (utc(split.started_at_millis))
            @match split.ended_at_millis {
                Some(ended) => { ", ended " (utc(ended)) " (the alias points at one version again)" }
                None => { ", running" }
            }
            ". Salt " code { (split.salt) } ": a customer's arm is the first 8 bytes of SHA-256(salt + \":\" + customer id) against the weights."
        }
        h2 { "Arms" }
        div.scroll {
            table #arms {
                thead { tr {
                    th { "version" } th { "weight" } th { "customers" } th { "labelled" } th { "churned" }
                    th { "churn rate" } th { "95% interval (Wilson)" } th { "ROC AUC" } th { "EMPC" }
                } }
                tbody {
                    @for arm in &report.arms {
                        tr data-version=(arm.version) {
                            td.num { a href=(version_href(name, arm.version)) { "v" (arm.version) } }
                            td.num.weight { (arm.weight) }
                            td.num.customers { (arm.customers) }
                            td.num.labelled { (arm.rate.labelled) }
                            td.num.churned { (arm.rate.churned) }
                            td.num.churn-rate { (number(arm.rate.rate())) }
                            td.num.interval { (number(arm.rate_interval.0)) " – " (number(arm.rate_interval.1)) }
                            td.num.roc-auc { @match &arm.realized { Some(m) => (number(m.roc_auc)), None => "—" } }
                            td.num.empc { @match arm.realized.as_ref().and_then(|m| m.profit.as_ref()) { Some(p) => (number(p.empc)), None => "—" } }
                        }
                    }
                }
            }
        }
        @if roc.is_empty() {
            p.note { "No arm has outcomes of both classes yet: record them with " code { "churnctl outcomes record" } " or RecordOutcomes." }
        } @else {
            div.charts {
                (charts::line_chart(&LineChart {
                    label: "ROC curve", x_axis: "false positive rate", y_axis: "true positive rate",
                    x_max: 1.0, y_max: 1.0, diagonal: true, baseline: None,
                    columns: &["FPR", "TPR", "threshold"], series: roc, ..Default::default()
                }))
            }
        }
        @if !report.contrasts.is_empty() {
            h2 { "Against v" (report.arms[0].version) }
            div.scroll {
                table #comparisons {
                    thead { tr {
                        th { "version" } th { "churn rate difference" } th { "95% interval" } th { "p-value (z-test)" }
                        th { "ROC AUC difference" } th { "95% interval" } th { "p-value (DeLong)" } th { "needed (80% power)" }
                    } }
                    tbody {
                        @for contrast in &report.contrasts {
                            (comparison_row(contrast))
                        }
                    }
                }
            }
            @for contrast in &report.contrasts {
                p.reading data-version=(contrast.version) { (reading(report, contrast)) }
            }
        }
    };
    layout(
        &format!("{name}: experiment on {}", split.alias),
        &[
            (model_href(name), name.clone()),
            (
                experiment_href(name, &split.alias),
                format!("experiment on {}", split.alias),
            ),
        ],
        body,
    )
}

fn comparison_row(contrast: &ArmContrast) -> Markup {
    let rates = &contrast.rates;
    html! {
        tr data-version=(contrast.version) {
            td.num { "v" (contrast.version) }
            td.num.rate-difference { (signed(rates.difference)) }
            td.num.rate-interval { (signed(rates.lower)) " – " (signed(rates.upper)) }
            td.num.rate-p { (number(rates.p_value)) }
            @match contrast.roc_auc {
                Some((difference, p_value, lower, upper)) => {
                    td.num.auc-difference { (signed(difference)) }
                    td.num.auc-interval { (signed(lower)) " – " (signed(upper)) }
                    td.num.auc-p { (number(p_value)) }
                }
                None => { td.num.auc-difference { "—" } td.num { "—" } td.num.auc-p { "—" } }
            }
            td.num.needed { @if contrast.labelled_needed > 0 { (contrast.labelled_needed) } @else { "—" } }
        }
    }
}

/// What the numbers allow a reader to conclude, in one sentence.
fn reading(report: &ExperimentReport, contrast: &ArmContrast) -> String {
    let baseline = report.arms[0].version;
    let labelled: u64 = report
        .arms
        .iter()
        .filter(|arm| arm.version == baseline || arm.version == contrast.version)
        .map(|arm| arm.rate.labelled)
        .sum();
    if contrast.rates.p_value < ALPHA {
        format!(
            "v{}'s churn rate differs from v{baseline}'s at the 5% level (p = {}).",
            contrast.version,
            number(contrast.rates.p_value)
        )
    } else if contrast.labelled_needed > labelled {
        format!(
            "No significant difference yet: detecting the observed one with 80% power needs about {} labelled customers in these two arms; they have {labelled}.",
            contrast.labelled_needed
        )
    } else {
        format!(
            "No significant difference between v{} and v{baseline} (p = {}).",
            contrast.version,
            number(contrast.rates.p_value)
        )
    }
}

fn signed(value: f64) -> String {
    if value >= 0.0 {
        format!("+{}", number(value))
    } else {
        number(value)
    }
}
