//! The monitoring page: the fleet's drift (PSI by feature and of the score) of every
//! version scored in the recent window, and how each shadow agrees with its alias.

use maud::{Markup, html};

use super::charts::{self, BarChart, number};
use super::pages::{layout, model_href, version_href};
use crate::domain::monitoring::drift::DriftReport;
use crate::domain::views::MonitoringView;

/// PSI below this is read as stable; at or above `PSI_ACT`, act.
const PSI_WATCH: f64 = 0.1;
const PSI_ACT: f64 = 0.25;

/// How to read a PSI, at the usual cut points.
pub fn psi_reading(psi: f64) -> &'static str {
    if psi.is_nan() {
        "no rows"
    } else if psi < PSI_WATCH {
        "stable"
    } else if psi < PSI_ACT {
        "watch"
    } else {
        "act"
    }
}

pub fn monitoring(view: &MonitoringView) -> Markup {
    let name = &view.summary.name;
    let body = html! {
        h2 { "Drift" }
        p { "PSI of each feature over the last " (view.drift_window_minutes) " minutes, on every replica, against the version's reference dataset: below " (PSI_WATCH) " stable, from " (PSI_WATCH) " watch, from " (PSI_ACT) " act." }
        @if view.drift.is_empty() {
            p.note { "No version of this model with a reference dataset has scored anything in the last " (view.drift_window_minutes) " minutes (" code { "churnctl set-reference" } " names one)." }
        }
        @for drift in &view.drift {
            (version_drift(name, drift))
        }
        h2 { "Shadows" }
        @if view.shadows.is_empty() {
            p.note { "No shadow is set: " code { "churnctl shadow set " (name) " --version N" } " scores a version beside an alias without answering with it." }
        } @else {
            div.scroll {
                table #shadows {
                    thead { tr { th { "alias" } th { "shadow version" } th { "compared" } th { "mean difference" } th { "mean |difference|" } th { "p99 |difference|" } th { "label agreement" } th { "Spearman" } th { "dropped" } th { "failed" } } }
                    tbody {
                        @for (config, stats) in &view.shadows {
                            tr data-alias=(config.alias) {
                                td { (config.alias) } td.num.shadow-version { "v" (config.shadow_version) } td.num.compared { (stats.compared) }
                                td.num { (number(stats.mean_difference())) } td.num { (number(stats.mean_abs_difference())) }
                                td.num { (number(stats.abs_difference_quantile(0.99))) } td.num { (number(stats.label_agreement())) }
                                td.num { (number(stats.rank_correlation())) } td.num { (stats.dropped) } td.num { (stats.failed) }
                            }
                        }
                    }
                }
            }
        }
    };
    layout(
        &format!("{name}: monitoring"),
        &[
            (model_href(name), name.clone()),
            (
                format!("{}/monitoring", model_href(name)),
                "monitoring".to_owned(),
            ),
        ],
        body,
    )
}

fn version_drift(name: &str, drift: &DriftReport) -> Markup {
    let version = drift.version;
    let score = drift.prediction.psi;
    let mut features: Vec<(String, f64)> = drift
        .features
        .iter()
        .map(|f| (f.feature.clone(), f.psi))
        .collect();
    features.sort_by(|a, b| b.1.total_cmp(&a.1));
    html! {
        section data-version=(version) data-rows=(drift.rows) {
            h3 { a href=(version_href(name, version)) { "v" (version) } ": " (drift.rows) " rows scored on every replica" }
            p { "Score PSI " span.score-psi { (number(score)) } ": " strong { (psi_reading(score)) } "." }
            (charts::bar_chart(&BarChart {
                label: "Drift (PSI by feature)",
                value_axis: "population stability index",
                marks: &[(PSI_WATCH, "watch"), (PSI_ACT, "act")],
                columns: &["PSI", "reading"],
                bars: features.iter().map(|(f, psi)| (f.clone(), *psi, vec![number(*psi), psi_reading(*psi).to_owned()])).collect(),
            }))
        }
    }
}
