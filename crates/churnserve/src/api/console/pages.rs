//! The console's pages as HTML, from the domain's views. maud escapes every value it
//! interpolates, so a description or a tag is shown as text, never read as markup.

use std::time::{Duration, UNIX_EPOCH};

use crate::domain::{CurvePoint, Metrics, Objective};
use maud::{DOCTYPE, Markup, html};

use super::charts::{self, BarChart, LineChart, Point, Series, number};
use super::profit::{self, campaign_text};
use crate::domain::analysis::evaluating::StoredEvaluation;
use crate::domain::analysis::explaining::ImportanceMethod;
use crate::domain::monitoring::performance::CohortPerformance;
use crate::domain::views::{CompareView, Computed, ModelView, ModelsView, VersionView};

/// A link in the trail above a page's title.
pub type Crumb = (String, String);

pub(super) fn model_href(name: &str) -> String {
    format!("/models/{}", path_segment(name))
}

pub(super) fn version_href(name: &str, version: u32) -> String {
    format!("{}/versions/{version}", model_href(name))
}

pub(super) fn experiment_href(name: &str, alias: &str) -> String {
    format!("{}/experiments/{}", model_href(name), path_segment(alias))
}

/// `text` percent-encoded for one path segment.
fn path_segment(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn utc(millis: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64);
    humantime::format_rfc3339_seconds(at).to_string()
}

pub fn layout(title: &str, crumbs: &[Crumb], body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · churnserve" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/console.css";
            }
            body {
                header.top {
                    a.brand href="/" { "churnserve" }
                    nav aria-label="breadcrumb" {
                        @for (href, text) in crumbs { a href=(href) { (text) } }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn models(view: &ModelsView) -> Markup {
    let body = html! {
        @if view.models.is_empty() {
            p { "No model is registered yet: " code { "churnctl register" } " adds one." }
        } @else {
            div.scroll {
                table #models {
                    thead { tr { th { "model" } th { "latest version" } th { "aliases" } th { "pages" } } }
                    tbody {
                        @for model in &view.models {
                            tr data-model=(model.name) {
                                td { a href=(model_href(&model.name)) { (model.name) } }
                                td.num { a href=(version_href(&model.name, model.latest_version)) { (model.latest_version) } }
                                td { (alias_chips(&model.name, model.aliases.iter().map(|(a, v)| (a.as_str(), *v)))) }
                                td {
                                    a href=(format!("{}/compare", model_href(&model.name))) { "compare" } " · "
                                    a href=(format!("{}/monitoring", model_href(&model.name))) { "monitoring" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    layout("Models", &[], body)
}

fn alias_chips<'a>(name: &str, aliases: impl Iterator<Item = (&'a str, u32)>) -> Markup {
    html! {
        @for (alias, version) in aliases {
            a.chip href=(version_href(name, version)) data-alias=(alias) data-version=(version) { (alias) " → v" (version) }
        }
    }
}

pub fn model(view: &ModelView) -> Markup {
    let name = &view.summary.name;
    let body = html! {
        p.links {
            a href=(format!("{}/compare", model_href(name))) { "Compare two versions" } " · "
            a href=(format!("{}/monitoring", model_href(name))) { "Monitoring" }
        }
        p { "Aliases: " (alias_chips(name, view.summary.aliases.iter().map(|(a, v)| (a.as_str(), *v)))) }
        @if !view.experiments.is_empty() {
            h2 { "Experiments" }
            ul #experiments {
                @for split in &view.experiments {
                    li data-alias=(split.alias) {
                        a href=(experiment_href(name, &split.alias)) { (split.alias) }
                        " split "
                        (split.arms.iter().map(|arm| format!("v{}:{}", arm.version, arm.weight)).collect::<Vec<_>>().join(" · "))
                        " since " (utc(split.started_at_millis))
                        @if split.ended_at_millis.is_some() { " (ended)" }
                    }
                }
            }
        }
        h2 { "Versions" }
        div.scroll {
            table #versions {
                thead { tr {
                    th { "version" } th { "created (UTC)" } th { "aliases" } th { "archived" } th { "producer" }
                    th { "description" } th { "tags" } th { "ROC AUC" }
                } }
                tbody {
                    @for version in &view.versions {
                        tr data-version=(version.version) {
                            td.num { a href=(version_href(name, version.version)) { (version.version) } }
                            td { (utc(version.created_at_millis)) }
                            td.aliases { (version.aliases.join(", ")) }
                            td { @if version.archived { "yes" } @else { "no" } }
                            td { (version.metadata.producer) }
                            td.description { (version.metadata.description) }
                            td { @for (key, value) in &version.metadata.tags { span.tag { (key) "=" (value) } " " } }
                            td.num.roc-auc { @match view.latest_roc_auc.get(&version.version) {
                                Some(auc) => (format!("{auc:.4}")),
                                None => "—",
                            } }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        div.scroll {
            table #audit {
                thead { tr { th { "when (UTC)" } th { "who" } th { "what" } th { "detail" } } }
                tbody {
                    @for entry in &view.audit.entries {
                        tr data-audit-id=(entry.id) {
                            td { (utc(entry.at_millis)) }
                            td { (entry.actor) }
                            td { (entry.action) }
                            td.detail { code { (entry.detail) } }
                        }
                    }
                }
            }
        }
        @if let Some(before) = view.audit.next_before_id {
            p { a href=(format!("{}?before={before}", model_href(name))) { "Older entries" } }
        }
    };
    layout(name, &[(model_href(name), name.clone())], body)
}

pub fn version(view: &VersionView, chosen: Option<&StoredEvaluation>) -> Markup {
    let record = &view.record;
    let (name, version) = (&record.name, record.version);
    let metadata = &record.metadata;
    let body = html! {
        dl.facts {
            dt { "threshold" } dd #threshold { (metadata.threshold) }
            dt { "risk bands" } dd #bands { "low < " (metadata.risk_band_cuts[0]) " ≤ medium < " (metadata.risk_band_cuts[1]) " ≤ high" }
            dt { "aliases" } dd { (record.aliases.join(", ")) }
            dt { "reference dataset" } dd #reference { @if metadata.reference_dataset.is_empty() { "none" } @else { (metadata.reference_dataset) } }
            dt { "created (UTC)" } dd { (utc(record.created_at_millis)) }
            dt { "producer" } dd { (metadata.producer) }
            dt { "description" } dd { (metadata.description) }
            dt { "sha256" } dd { code { (record.sha256) } }
            dt { "archived" } dd { @if record.archived { "yes" } @else { "no" } }
        }
        p.links { a href=(format!("{}/compare?challenger={version}", model_href(name))) { "Compare with production" } }
        h2 { "Evaluations" }
        @if view.evaluations.is_empty() {
            p { "Not evaluated yet: " code { "churnctl evaluate " (name) "/" (version) " --dataset NAME" } " stores one, and its curves appear here." }
        } @else {
            div.scroll {
                table #evaluations {
                    thead { tr { th { "when (UTC)" } th { "dataset" } th { "rows" } th { "threshold" } th { "ROC AUC" } th { "PR AUC" } th { "log loss" } th { "precision" } th { "recall" } th { "F1" } th { "EMPC" } th { "contacts" } } }
                    tbody {
                        @for evaluation in &view.evaluations {
                            @let metrics = &evaluation.stored.metrics;
                            @let shown = chosen.is_some_and(|c| c.record.evaluation_id == evaluation.record.evaluation_id);
                            tr data-evaluation=(evaluation.record.evaluation_id) class=[shown.then_some("shown")] {
                                td { a href=(format!("{}?evaluation={}", version_href(name, version), evaluation.record.evaluation_id)) { (utc(evaluation.record.created_at_millis)) } }
                                td { @if evaluation.record.dataset.is_empty() { "inline rows" } @else { (evaluation.record.dataset) } }
                                td.num.rows { (metrics.rows) }
                                td.num.threshold { (evaluation.record.threshold) }
                                td.num.roc-auc { (format!("{:.4}", metrics.roc_auc)) }
                                td.num { (format!("{:.4}", metrics.pr_auc)) }
                                td.num { (format!("{:.4}", metrics.log_loss)) }
                                td.num { (format!("{:.4}", metrics.precision)) }
                                td.num { (format!("{:.4}", metrics.recall)) }
                                td.num { (format!("{:.4}", metrics.f1)) }
                                @match &metrics.profit {
                                    Some(profit) => {
                                        td.num.empc title=(campaign_text(&profit.parameters)) { (format!("{:.4}", profit.empc)) }
                                        td.num { (format!("{:.4}", profit.empc_fraction)) }
                                    }
                                    None => { td.num.empc { "—" } td.num { "—" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(evaluation) = chosen {
            h2 { "Curves of the evaluation on " (dataset_name(evaluation)) ", " (utc(evaluation.record.created_at_millis)) }
            (evaluation_charts(&[(format!("v{version}"), &evaluation.stored.metrics)]))
        }
        @match &view.performance {
            Computed::Ready(cohorts) if !cohorts.is_empty() => {
                h2 { "Realized performance" }
                p { "Weekly cohorts of this version's logged predictions: the ROC AUC of those whose outcome is known, and the one the probabilities expect without labels." }
                (performance_chart(cohorts))
            }
            Computed::Ready(_) => {}
            Computed::Computing => p.note { "The realized performance is being computed: reload the page in a moment." },
            Computed::Failed(why) => p.note { "The realized performance could not be read: " (why) },
        }
        h2 { "Feature importance" }
        p.note { "The model's own measure (split counts of a tree ensemble, the spread of each feature's term of a linear model), and the mean |SHAP| over the reference dataset." }
        div.charts {
            @for (method, outcome) in &view.importance {
                @match outcome {
                    Computed::Computing => p.note { (importance_label(*method)) " is being computed: reload the page in a moment." },
                    Computed::Ready(features) => (charts::bar_chart(&BarChart {
                        label: importance_label(*method),
                        value_axis: "importance",
                        marks: &[],
                        columns: &["importance", "stddev"],
                        bars: features.iter().map(|f| (f.feature.clone(), f.importance, vec![number(f.importance), number(f.stddev)])).collect(),
                    })),
                    Computed::Failed(why) => p.note { (importance_label(*method)) ": " (why) },
                }
            }
        }
        h2 { "Input schema" }
        div.scroll {
            table #schema {
                thead { tr { th { "feature" } th { "kind" } th { "allowed values" } } }
                tbody {
                    @for feature in &metadata.features {
                        tr { td { (feature.name) } td { (feature.kind) } td { (feature.allowed_values.join(", ")) } }
                    }
                }
            }
        }
    };
    let title = format!("{name} v{version}");
    layout(
        &title,
        &[
            (model_href(name), name.clone()),
            (version_href(name, version), format!("v{version}")),
        ],
        body,
    )
}

/// Realized and estimated ROC AUC by weekly cohort, oldest first.
fn performance_chart(cohorts: &[CohortPerformance]) -> Markup {
    let point = |k: usize, cohort: &CohortPerformance, auc: f64| Point {
        x: (k + 1) as f64,
        y: auc,
        cells: vec![
            utc(cohort.start_millis)[..10].to_owned(),
            cohort.scored.to_string(),
            cohort.labelled.to_string(),
            number(auc),
        ],
    };
    let realized = cohorts
        .iter()
        .enumerate()
        .filter_map(|(k, c)| Some(point(k, c, c.realized.as_ref()?.roc_auc)))
        .collect();
    let estimated = cohorts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.estimated.roc_auc.is_finite())
        .map(|(k, c)| point(k, c, c.estimated.roc_auc))
        .collect();
    charts::line_chart(&LineChart {
        label: "Realized performance",
        x_axis: "weekly cohort (1 = oldest)",
        y_axis: "ROC AUC",
        x_max: cohorts.len().max(1) as f64,
        y_max: 1.0,
        diagonal: false,
        baseline: Some(0.5),
        columns: &["week of", "scored", "labelled", "ROC AUC"],
        series: vec![
            Series {
                name: "realized".to_owned(),
                points: realized,
            },
            Series {
                name: "estimated".to_owned(),
                points: estimated,
            },
        ],
        ..Default::default()
    })
}

fn dataset_name(evaluation: &StoredEvaluation) -> &str {
    if evaluation.record.dataset.is_empty() {
        "inline rows"
    } else {
        &evaluation.record.dataset
    }
}

fn importance_label(method: ImportanceMethod) -> &'static str {
    match method {
        // The model's own measure is the chart a reader (or a script) looks for first.
        ImportanceMethod::ModelNative => "Feature importance",
        ImportanceMethod::MeanAbsShap => "Feature importance (mean |SHAP|)",
        ImportanceMethod::Permutation => "Feature importance (permutation)",
    }
}

/// The ROC, precision-recall, calibration, lift and cumulative gain charts of one or more
/// evaluations, each version a series on the same axes.
fn evaluation_charts(evaluations: &[(String, &Metrics)]) -> Markup {
    let curve = |points: &[CurvePoint]| {
        points
            .iter()
            .map(|p| Point {
                x: p.x,
                y: p.y,
                cells: vec![number(p.x), number(p.y), number(p.threshold)],
            })
            .collect()
    };
    let series = |points: &dyn Fn(&Metrics) -> Vec<Point>| {
        evaluations
            .iter()
            .map(|(name, metrics)| Series {
                name: name.clone(),
                points: points(metrics),
            })
            .collect::<Vec<_>>()
    };
    let roc = series(&|m| curve(&m.roc_curve));
    let pr = series(&|m| curve(&m.pr_curve));
    let calibration = series(&|m| {
        m.calibration
            .iter()
            .filter(|bin| bin.count > 0)
            .map(|bin| Point {
                x: bin.mean_predicted,
                y: bin.observed_rate,
                cells: vec![
                    format!("{}–{}", bin.lower, bin.upper),
                    number(bin.mean_predicted),
                    number(bin.observed_rate),
                    bin.count.to_string(),
                ],
            })
            .collect()
    });
    let lift = series(&|m| {
        m.lift
            .iter()
            .map(|bin| Point {
                x: f64::from(bin.decile),
                y: bin.lift,
                cells: vec![
                    bin.decile.to_string(),
                    number(bin.churn_rate),
                    number(bin.lift),
                ],
            })
            .collect()
    });
    let gain = series(&|m| {
        m.lift
            .iter()
            .map(|bin| Point {
                x: f64::from(bin.decile) / 10.0,
                y: bin.cumulative_capture,
                cells: vec![bin.decile.to_string(), number(bin.cumulative_capture)],
            })
            .collect()
    });
    let highest_lift = lift
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.y))
        .fold(1.0, f64::max);
    html! {
        div.charts {
            (charts::line_chart(&LineChart {
                label: "ROC curve", x_axis: "false positive rate", y_axis: "true positive rate",
                x_max: 1.0, y_max: 1.0, diagonal: true, baseline: None,
                columns: &["FPR", "TPR", "threshold"], series: roc, ..Default::default()
            }))
            (charts::line_chart(&LineChart {
                label: "Precision-recall curve", x_axis: "recall", y_axis: "precision",
                x_max: 1.0, y_max: 1.0, diagonal: false, baseline: None,
                columns: &["recall", "precision", "threshold"], series: pr, ..Default::default()
            }))
            (charts::line_chart(&LineChart {
                label: "Calibration", x_axis: "mean predicted probability", y_axis: "observed churn rate",
                x_max: 1.0, y_max: 1.0, diagonal: true, baseline: None,
                columns: &["bin", "mean predicted", "observed", "rows"], series: calibration, ..Default::default()
            }))
            (charts::line_chart(&LineChart {
                label: "Lift", x_axis: "decile (1 = riskiest tenth)", y_axis: "lift",
                x_max: 10.0, y_max: charts::nice_ceiling(highest_lift), diagonal: false, baseline: Some(1.0),
                columns: &["decile", "churn rate", "lift"], series: lift, ..Default::default()
            }))
            (charts::line_chart(&LineChart {
                label: "Cumulative gain", x_axis: "share of customers, riskiest first", y_axis: "share of churners captured",
                x_max: 1.0, y_max: 1.0, diagonal: true, baseline: None,
                columns: &["decile", "captured"], series: gain, ..Default::default()
            }))
        }
    }
}

fn objective_name(objective: Objective) -> String {
    match objective {
        Objective::F1 => "best F1".to_owned(),
        Objective::RecallAtPrecision(p) => format!("best recall at precision ≥ {p}"),
        Objective::TopK(k) => format!("flag the riskiest {k}"),
        Objective::MaxProfit(_) => "most profitable campaign".to_owned(),
    }
}

pub fn compare(view: &CompareView) -> Markup {
    let name = &view.champion.name;
    let (a, b) = (view.champion.version, view.challenger.version);
    let href = |dataset: &str| {
        format!(
            "{}/compare?champion={a}&challenger={b}&dataset={}",
            model_href(name),
            path_segment(dataset)
        )
    };
    let evaluated: Vec<(String, &Metrics)> = [
        (a, &view.champion_evaluation),
        (b, &view.challenger_evaluation),
    ]
    .into_iter()
    .filter_map(|(v, e)| e.as_ref().map(|e| (format!("v{v}"), &e.stored.metrics)))
    .collect();
    let body = html! {
        form.pick method="get" action=(format!("{}/compare", model_href(name))) {
            label { "champion " input name="champion" type="number" min="1" value=(a); }
            label { "challenger " input name="challenger" type="number" min="1" value=(b); }
            @if let Some(dataset) = &view.dataset { input type="hidden" name="dataset" value=(dataset); }
            button type="submit" { "Compare" }
        }
        @if view.datasets.len() > 1 {
            p { "Datasets both were evaluated on: "
                @for dataset in &view.datasets { a.chip href=(href(dataset)) { (dataset) } }
            }
        }
        @match &view.dataset {
            None => p.note { "The two versions share no evaluated dataset: " code { "churnctl compare " (name) " --champion " (a) " --challenger " (b) " --dataset NAME" } " evaluates both on one. Each version's latest evaluation is drawn." },
            Some(dataset) => p { "On dataset " strong #dataset { (dataset) } "." },
        }
        div.scroll {
            table #headline {
                thead { tr { th { "version" } th { "aliases" } th { "rows" } th { "ROC AUC" } th { "PR AUC" } th { "threshold" } } }
                tbody {
                    @for (record, evaluation) in [(&view.champion, &view.champion_evaluation), (&view.challenger, &view.challenger_evaluation)] {
                        tr data-version=(record.version) {
                            td { a href=(version_href(name, record.version)) { "v" (record.version) } }
                            td { (record.aliases.join(", ")) }
                            @match evaluation {
                                Some(e) => {
                                    td.num.rows { (e.stored.metrics.rows) }
                                    td.num.roc-auc { (format!("{:.4}", e.stored.metrics.roc_auc)) }
                                    td.num { (format!("{:.4}", e.stored.metrics.pr_auc)) }
                                    td.num.threshold { (e.record.threshold) }
                                }
                                None => { td colspan="4" { "not evaluated" } }
                            }
                        }
                    }
                }
            }
        }
        @match &view.contrast {
            Some(Computed::Ready(contrast)) => {
                @let test = &contrast.comparison;
                p #delong {
                    "DeLong's test over " span.paired { (contrast.paired_rows) } " paired rows: ROC AUC difference (v" (b) " − v" (a) ") "
                    span.difference { (format!("{:+.4}", test.difference)) } ", standard error " (format!("{:.4}", test.standard_error))
                    ", p-value " span.p-value { (format!("{:.4}", test.p_value)) } "."
                }
            }
            Some(Computed::Failed(why)) => p.note { "The versions could not be compared: " (why) },
            Some(Computed::Computing) => p.note { "DeLong's test and the threshold suggestions are being computed: reload the page in a moment." },
            None => {}
        }
        (evaluation_charts(&evaluated))
        (profit::campaign(view, &format!("{}/compare", model_href(name))))
        @if let Some(Computed::Ready(contrast)) = &view.contrast {
                h2 { "Threshold suggestions on " (view.dataset.as_deref().unwrap_or_default()) }
                div.scroll {
                    table #thresholds {
                        thead { tr { th { "objective" } th { "version" } th { "threshold" } th { "precision" } th { "recall" } th { "F1" } th { "flagged" } } }
                        tbody {
                            @for (objective, champion, challenger) in &contrast.thresholds {
                                @for (version, choice) in [(a, champion), (b, challenger)] {
                                    tr {
                                        td { (objective_name(*objective)) }
                                        td { "v" (version) }
                                        @match choice {
                                            Some(c) => {
                                                td.num.threshold { (number(c.threshold)) }
                                                td.num { (number(c.precision)) } td.num { (number(c.recall)) }
                                                td.num { (number(c.f1)) } td.num { (c.flagged) }
                                            }
                                            None => { td colspan="5" { "cannot be met" } }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
        }
    };
    let title = format!("{name}: v{a} against v{b}");
    layout(
        &title,
        &[
            (model_href(name), name.clone()),
            (
                format!("{}/compare", model_href(name)),
                "compare".to_owned(),
            ),
        ],
        body,
    )
}
