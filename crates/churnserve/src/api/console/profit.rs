//! The compare page's retention campaign: both versions' profit curves overlaid, each
//! version's expected maximum profit and the fraction it would contact, and a form that
//! prices another campaign.

use maud::{Markup, html};

use super::charts::{self, LineChart, Point, Series, number};
use crate::domain::analysis::evaluating::StoredEvaluation;
use crate::domain::views::{CompareView, Computed};
use crate::domain::{ProfitMetrics, ProfitParameters};

/// The campaign section of the compare page, whose form goes to `compare_href`: the form,
/// then the chart and the figures once both versions are priced on the page's dataset
/// (the stored evaluations' own campaigns without one).
pub fn campaign(view: &CompareView, compare_href: &str) -> Markup {
    let campaign = view.campaign;
    let (a, b) = (view.champion.version, view.challenger.version);
    let profits = match (&view.dataset, &view.contrast) {
        (Some(_), Some(Computed::Ready(contrast))) => {
            Some((&contrast.profits.0, &contrast.profits.1))
        }
        (None, _) => stored(&view.champion_evaluation).zip(stored(&view.challenger_evaluation)),
        _ => None,
    };
    let field = |label: &str, name: &str, value: f64, step: &str| {
        html! { label { (label) " " input name=(name) type="number" step=(step) value=(value); } }
    };
    html! {
        section #profit-campaign {
        h2 { "Retention campaign" }
        form.pick #campaign method="get" action=(compare_href) {
            input type="hidden" name="champion" value=(a);
            input type="hidden" name="challenger" value=(b);
            @if let Some(dataset) = &view.dataset { input type="hidden" name="dataset" value=(dataset); }
            (field("customer value", "clv", campaign.clv, "any"))
            (field("incentive", "incentive_cost", campaign.incentive_cost, "any"))
            (field("contact cost", "contact_cost", campaign.contact_cost, "any"))
            (field("acceptance α", "acceptance_alpha", campaign.acceptance_alpha, "any"))
            (field("acceptance β", "acceptance_beta", campaign.acceptance_beta, "any"))
            button type="submit" { "Redraw" }
        }
        @match profits {
            Some((champion, challenger)) => {
                (figures(&[(a, champion), (b, challenger)]))
                div.charts { (chart(&[(a, champion), (b, challenger)])) }
            }
            None => p.note { "The campaign is priced once both versions are scored on the dataset." },
        }
        }
    }
}

/// A campaign in words, for a note or a hover text.
pub fn campaign_text(parameters: &ProfitParameters) -> String {
    format!(
        "a retained churner is worth {}, the offer costs {} per customer who takes it, a contact {}; the share of contacted churners who accept follows Beta({}, {})",
        parameters.clv,
        parameters.incentive_cost,
        parameters.contact_cost,
        parameters.acceptance_alpha,
        parameters.acceptance_beta
    )
}

fn figures(versions: &[(u32, &ProfitMetrics)]) -> Markup {
    html! {
        p.note {
            "Per customer, contacting the customers each version ranks riskiest: "
            (campaign_text(&versions[0].1.parameters)) "."
        }
        div.scroll {
            table #profit {
                thead { tr { th { "version" } th { "EMPC" } th { "contacts (expected)" } th { "MPC" } th { "contacts at the mean acceptance" } } }
                tbody {
                    @for (version, profit) in versions {
                        tr data-version=(version) {
                            td { "v" (version) }
                            td.num.empc { (number(profit.empc)) }
                            td.num.empc-fraction { (number(profit.empc_fraction)) }
                            td.num.mpc { (number(profit.mpc)) }
                            td.num.mpc-fraction { (number(profit.mpc_fraction)) }
                        }
                    }
                }
            }
        }
        @if let [(a, champion), (b, challenger)] = versions {
            p #empc-difference {
                "EMPC difference (v" (b) " − v" (a) "): "
                span.difference { (format!("{:+.4}", challenger.empc - champion.empc)) } " per customer."
            }
        }
    }
}

fn chart(versions: &[(u32, &ProfitMetrics)]) -> Markup {
    let series: Vec<Series> = versions
        .iter()
        .map(|(version, profit)| Series {
            name: format!("v{version}"),
            points: profit
                .profit_curve
                .iter()
                .map(|p| Point {
                    x: p.x,
                    y: p.y,
                    cells: vec![number(p.x), number(p.y), number(p.threshold)],
                })
                .collect(),
        })
        .collect();
    let ys = || series.iter().flat_map(|s| s.points.iter().map(|p| p.y));
    let highest = ys().fold(0.0, f64::max);
    let lowest = ys().fold(0.0, f64::min);
    charts::line_chart(&LineChart {
        label: "Profit curve",
        x_axis: "fraction of customers contacted, riskiest first",
        y_axis: "profit per customer",
        x_max: 1.0,
        y_max: charts::nice_ceiling(highest),
        y_min: if lowest < 0.0 {
            -charts::nice_ceiling(-lowest)
        } else {
            0.0
        },
        baseline: Some(0.0),
        marks: versions
            .iter()
            .map(|(version, profit)| {
                (
                    profit.empc_fraction,
                    format!("v{version} EMPC fraction {}", number(profit.empc_fraction)),
                )
            })
            .collect(),
        columns: &["contacted", "profit", "threshold"],
        series,
        ..Default::default()
    })
}

fn stored(evaluation: &Option<StoredEvaluation>) -> Option<&ProfitMetrics> {
    evaluation.as_ref()?.stored.metrics.profit.as_ref()
}
