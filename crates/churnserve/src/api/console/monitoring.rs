//! The monitoring page: drift (PSI by feature and of the score) of every version that
//! scored since start, and how each shadow agrees with its alias.

use maud::{Markup, html};

use super::charts::{self, BarChart, number};
use super::pages::{layout, model_href, version_href};
use crate::domain::views::{MonitoringView, VersionDrift};

/// PSI below this is read as stable; at or above `PSI_ACT`, act.
const PSI_WATCH: f64 = 0.1;
const PSI_ACT: f64 = 0.25;

/// How to read a PSI, at the usual cut points.
pub fn psi_reading(psi: f64) -> &'static str {
    if psi < PSI_WATCH {
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
        p { "PSI of each feature over the recent window against the version's reference dataset: below " (PSI_WATCH) " stable, from " (PSI_WATCH) " watch, from " (PSI_ACT) " act." }
        @if view.drift.is_empty() {
            p.note { "No version of this model has scored anything since the server started." }
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

fn version_drift(name: &str, drift: &VersionDrift) -> Markup {
    html! {
        section data-version=(drift.version) {
        h3 { a href=(version_href(name, drift.version)) { "v" (drift.version) } " over its last " (drift.window_rows) " scored rows" }
        @match &drift.report {
            None => p.note { "No reference yet: the version needs a reference dataset (" code { "churnctl set-reference" } ")." },
            Some(report) => {
                p { "Score PSI " (number(report.score)) ": " strong { (psi_reading(report.score)) } "." }
                @let mut features = report.features.clone();
                ({
                    features.sort_by(|a, b| b.1.total_cmp(&a.1));
                    charts::bar_chart(&BarChart {
                        label: "Drift (PSI by feature)",
                        value_axis: "population stability index",
                        marks: &[(PSI_WATCH, "watch"), (PSI_ACT, "act")],
                        columns: &["PSI", "reading"],
                        bars: features.iter().map(|(f, psi)| (f.clone(), *psi, vec![number(*psi), psi_reading(*psi).to_owned()])).collect(),
                    })
                })
            }
        }
        }
    }
}
