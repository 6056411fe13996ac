//! Domain results to protobuf responses.

use std::sync::Arc;

use crate::domain::{Attribution, Explanation, FeatureImportance};
use crate::domain::{AucComparison, CurvePoint, Metrics, ProfitMetrics, ThresholdChoice};
use crate::domain::{FeatureValue, Prediction, RiskBand, RowError};
use churn_api::v1 as pb;

use crate::domain::analysis::evaluating::{Evaluated, StoredEvaluation};
use crate::domain::analysis::explaining::ImportanceMethod;
use crate::domain::analysis::shadows::ShadowStats;
use crate::domain::monitoring::drift::{DriftReport, FeatureDrift};
use crate::domain::monitoring::experiments::ExperimentReport;
use crate::domain::monitoring::performance::CohortPerformance;
use crate::domain::records::versions::AuditPage;
use crate::domain::serving::scoring::{Scored, ScoredBatch};
use crate::domain::serving::served::ServedModel;
use crate::domain::{DatasetRecord, ModelSummary, ShadowConfig, TrafficSplit, VersionRecord};

pub fn served_by(served: &ServedModel) -> pb::ServedBy {
    pb::ServedBy {
        name: served.name.clone(),
        version: served.version,
        sha256: served.sha256.clone(),
    }
}

pub fn score_response(scored: Scored) -> pb::ScoreResponse {
    let mut answer = prediction(scored.customer_id, &scored.prediction);
    answer.top_reasons = scored.reasons.iter().map(reason).collect();
    pb::ScoreResponse {
        prediction: Some(answer),
        served_by: Some(served_by(&scored.served)),
    }
}

pub fn risk_band(band: RiskBand) -> pb::RiskBand {
    match band {
        RiskBand::Low => pb::RiskBand::Low,
        RiskBand::Medium => pb::RiskBand::Medium,
        RiskBand::High => pb::RiskBand::High,
    }
}

fn prediction(customer_id: String, prediction: &Prediction) -> pb::Prediction {
    let risk_band = risk_band(prediction.risk_band);
    pb::Prediction {
        customer_id,
        churn_probability: prediction.churn_probability,
        will_churn: prediction.will_churn,
        risk_band: risk_band.into(),
        top_reasons: Vec::new(),
    }
}

pub fn reason(attribution: &Attribution) -> pb::Reason {
    pb::Reason {
        feature: attribution.feature.clone(),
        value: Some(feature_value(&attribution.value)),
        contribution: attribution.contribution,
    }
}

fn feature_value(value: &FeatureValue) -> pb::FeatureValue {
    let kind = match value {
        FeatureValue::Number(number) => Some(pb::feature_value::Kind::Number(*number)),
        FeatureValue::Text(text) => Some(pb::feature_value::Kind::Text(text.clone())),
        FeatureValue::Flag(flag) => Some(pb::feature_value::Kind::Flag(*flag)),
        FeatureValue::Missing => None,
    };
    pb::FeatureValue { kind }
}

pub fn explain_response(served: &ServedModel, explanation: Explanation) -> pb::ExplainResponse {
    pb::ExplainResponse {
        served_by: Some(served_by(served)),
        base_value: explanation.base_value,
        output_value: explanation.output_value,
        attributions: explanation.attributions.iter().map(reason).collect(),
        method: explanation.method.as_str().to_owned(),
        max_abs_error: explanation.max_abs_error,
    }
}

pub fn importance_response(
    served: &ServedModel,
    method: ImportanceMethod,
    scores: Vec<FeatureImportance>,
) -> pb::FeatureImportanceResponse {
    let method = match method {
        ImportanceMethod::ModelNative => pb::ImportanceMethod::ModelNative,
        ImportanceMethod::Permutation => pb::ImportanceMethod::Permutation,
        ImportanceMethod::MeanAbsShap => pb::ImportanceMethod::MeanAbsShap,
    };
    pb::FeatureImportanceResponse {
        served_by: Some(served_by(served)),
        method: method.into(),
        features: scores
            .into_iter()
            .map(|s| pb::FeatureScore {
                feature: s.feature,
                importance: s.importance,
                stddev: s.stddev,
            })
            .collect(),
    }
}

/// One response for a batch, its rows numbered from the batch's first row in the
/// request or stream.
pub fn score_batch_response(batch: ScoredBatch) -> pb::ScoreBatchResponse {
    let split = batch.row_served.is_some();
    let mut row_served = batch.row_served.unwrap_or_default().into_iter();
    let results = batch
        .customer_ids
        .into_iter()
        .zip(batch.outcomes)
        .zip(batch.reasons)
        .zip(batch.first_row..)
        .map(|(((customer_id, outcome), reasons), row)| pb::RowResult {
            row,
            served_by: row_served.next().flatten().map(|served| served_by(&served)),
            outcome: Some(match outcome {
                Ok(scored) => {
                    let mut prediction = prediction(customer_id, &scored);
                    prediction.top_reasons = reasons.iter().map(reason).collect();
                    pb::row_result::Outcome::Prediction(prediction)
                }
                Err(error) => pb::row_result::Outcome::Error(row_error(row, &error)),
            }),
        })
        .collect();
    pb::ScoreBatchResponse {
        results,
        served_by: (!split).then(|| served_by(&batch.served)),
    }
}

pub fn metrics(metrics: &Metrics) -> pb::Metrics {
    let confusion = metrics.confusion;
    pb::Metrics {
        rows: metrics.rows,
        positives: metrics.positives,
        roc_auc: metrics.roc_auc,
        pr_auc: metrics.pr_auc,
        log_loss: metrics.log_loss,
        brier: metrics.brier,
        accuracy: metrics.accuracy,
        precision: metrics.precision,
        recall: metrics.recall,
        f1: metrics.f1,
        confusion: Some(pb::ConfusionMatrix {
            tp: confusion.tp,
            fp: confusion.fp,
            tn: confusion.tn,
            r#fn: confusion.fn_,
        }),
        calibration: metrics
            .calibration
            .iter()
            .map(|bin| pb::CalibrationBin {
                lower: bin.lower,
                upper: bin.upper,
                mean_predicted: bin.mean_predicted,
                observed_rate: bin.observed_rate,
                count: bin.count,
            })
            .collect(),
        lift: metrics
            .lift
            .iter()
            .map(|bin| pb::LiftBin {
                decile: bin.decile,
                churn_rate: bin.churn_rate,
                lift: bin.lift,
                cumulative_capture: bin.cumulative_capture,
            })
            .collect(),
        roc_curve: curve(&metrics.roc_curve),
        pr_curve: curve(&metrics.pr_curve),
        profit: metrics.profit.as_ref().map(profit),
    }
}

fn profit(profit: &ProfitMetrics) -> pb::ProfitMetrics {
    let parameters = profit.parameters;
    pb::ProfitMetrics {
        empc: profit.empc,
        empc_fraction: profit.empc_fraction,
        mpc: profit.mpc,
        mpc_fraction: profit.mpc_fraction,
        profit_curve: curve(&profit.profit_curve),
        parameters: Some(pb::ProfitParameters {
            clv: parameters.clv,
            incentive_cost: parameters.incentive_cost,
            contact_cost: parameters.contact_cost,
            acceptance_alpha: parameters.acceptance_alpha,
            acceptance_beta: parameters.acceptance_beta,
        }),
    }
}

pub fn realized_performance(
    served: &ServedModel,
    cohorts: &[CohortPerformance],
) -> pb::RealizedPerformanceResponse {
    pb::RealizedPerformanceResponse {
        served_by: Some(served_by(served)),
        cohorts: cohorts
            .iter()
            .map(|cohort| pb::Cohort {
                start: Some(timestamp(cohort.start_millis)),
                scored: cohort.scored,
                labelled: cohort.labelled,
                churned: cohort.churned,
                realized: cohort.realized.as_ref().map(metrics),
                estimated: Some(pb::EstimatedMetrics {
                    roc_auc: cohort.estimated.roc_auc,
                    accuracy: cohort.estimated.accuracy,
                    precision: cohort.estimated.precision,
                    recall: cohort.estimated.recall,
                    f1: cohort.estimated.f1,
                }),
            })
            .collect(),
    }
}

fn curve(points: &[CurvePoint]) -> Vec<pb::CurvePoint> {
    points
        .iter()
        .map(|point| pb::CurvePoint {
            x: point.x,
            y: point.y,
            threshold: point.threshold,
        })
        .collect()
}

pub fn evaluate_response(evaluated: &Evaluated) -> pb::EvaluateResponse {
    pb::EvaluateResponse {
        served_by: Some(served_by(&evaluated.served)),
        evaluation_id: evaluated.record.evaluation_id.clone(),
        metrics: Some(metrics(&evaluated.metrics)),
        rejected_rows: evaluated.rejected,
        rejections: evaluated
            .rejections
            .iter()
            .map(|(row, error)| row_error(*row as u32, error))
            .collect(),
    }
}

fn auc_difference(comparison: &AucComparison) -> pb::AucDifference {
    pb::AucDifference {
        difference: comparison.difference,
        standard_error: comparison.standard_error,
        lower: comparison.lower,
        upper: comparison.upper,
        p_value: comparison.p_value,
    }
}

/// A stored evaluation; its metrics JSON was written by this server.
pub fn evaluation(StoredEvaluation { record, stored }: StoredEvaluation) -> pb::Evaluation {
    pb::Evaluation {
        evaluation_id: record.evaluation_id,
        served_by: Some(pb::ServedBy {
            name: record.name,
            version: record.version,
            sha256: record.model_sha256,
        }),
        dataset: record.dataset,
        threshold: record.threshold,
        metrics: Some(metrics(&stored.metrics)),
        created_at: Some(timestamp(record.created_at_millis)),
        rejected_rows: stored.rejected_rows,
    }
}

pub fn row_error(row: u32, error: &RowError) -> pb::RowError {
    pb::RowError {
        feature: error
            .problems
            .first()
            .map(|p| p.feature.clone())
            .unwrap_or_default(),
        message: format!("row {row}: {error}"),
    }
}

pub fn model_version(record: VersionRecord) -> pb::ModelVersion {
    let metadata = record.metadata;
    pb::ModelVersion {
        name: record.name,
        version: record.version,
        sha256: record.sha256,
        size_bytes: record.size_bytes,
        created_at: Some(timestamp(record.created_at_millis)),
        description: metadata.description,
        tags: metadata.tags.into_iter().collect(),
        aliases: record.aliases,
        features: metadata
            .features
            .into_iter()
            .map(|feature| pb::FeatureSpec {
                kind: match feature.kind.as_str() {
                    "number" => pb::FeatureKind::Number,
                    "text" => pb::FeatureKind::Text,
                    "bool" => pb::FeatureKind::Bool,
                    _ => pb::FeatureKind::Unspecified,
                }
                .into(),
                name: feature.name,
                allowed_values: feature.allowed_values,
            })
            .collect(),
        positive_class: metadata.positive_class,
        class_labels: metadata.class_labels,
        threshold: metadata.threshold,
        risk_band_cuts: metadata.risk_band_cuts.to_vec(),
        reference_dataset: metadata.reference_dataset,
        archived: record.archived,
        producer: metadata.producer,
    }
}

pub fn model_summary(summary: ModelSummary) -> pb::ModelSummary {
    pb::ModelSummary {
        name: summary.name,
        latest_version: summary.latest_version,
        aliases: summary.aliases.into_iter().collect(),
    }
}

pub fn dataset(record: DatasetRecord) -> pb::Dataset {
    pb::Dataset {
        name: record.name,
        rows: record.rows,
        positives: record.positives,
        columns: record.columns,
        sha256: record.sha256,
        created_at: Some(timestamp(record.created_at_millis)),
    }
}

pub fn audit_events(page: AuditPage) -> pb::ListAuditEventsResponse {
    pb::ListAuditEventsResponse {
        next_before_id: page.next_before_id.map_or(0, |id| id as u64),
        events: page
            .entries
            .into_iter()
            .map(|e| pb::AuditEvent {
                id: e.id as u64,
                at: Some(timestamp(e.at_millis)),
                actor: e.actor,
                action: e.action,
                name: e.name,
                detail_json: e.detail,
            })
            .collect(),
    }
}

fn timestamp(millis: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: millis.div_euclid(1000),
        nanos: (millis.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub fn shadow(config: &ShadowConfig) -> pb::Shadow {
    pb::Shadow {
        name: config.name.clone(),
        alias: config.alias.clone(),
        version: config.shadow_version,
        record: config.record,
    }
}

pub fn shadow_stats(config: &ShadowConfig, stats: &ShadowStats) -> pb::ShadowStatsResponse {
    let [
        both_churn,
        served_only_churn,
        shadow_only_churn,
        neither_churn,
    ] = stats.labels;
    pb::ShadowStatsResponse {
        shadow: Some(shadow(config)),
        compared: stats.compared,
        dropped: stats.dropped,
        failed: stats.failed,
        recorded: stats.recorded,
        mean_difference: stats.mean_difference(),
        mean_abs_difference: stats.mean_abs_difference(),
        max_abs_difference: stats.max_abs_difference,
        p50_abs_difference: stats.abs_difference_quantile(0.5),
        p90_abs_difference: stats.abs_difference_quantile(0.9),
        p99_abs_difference: stats.abs_difference_quantile(0.99),
        label_agreement: stats.label_agreement(),
        both_churn,
        served_only_churn,
        shadow_only_churn,
        neither_churn,
        rank_correlation: stats.rank_correlation(),
        rank_window: stats.rank_window() as u32,
    }
}

pub fn compare_response(
    (champion, challenger, comparison, paired_rows): (Evaluated, Evaluated, AucComparison, u64),
) -> pb::CompareResponse {
    pb::CompareResponse {
        champion: Some(evaluate_response(&champion)),
        challenger: Some(evaluate_response(&challenger)),
        roc_auc_difference: Some(auc_difference(&comparison)),
        paired_rows,
        empc_difference: challenger.empc() - champion.empc(),
    }
}

pub fn threshold_response(
    (served, choice, rows): (Arc<ServedModel>, ThresholdChoice, u64),
) -> pb::SuggestThresholdResponse {
    pb::SuggestThresholdResponse {
        served_by: Some(served_by(&served)),
        threshold: choice.threshold,
        precision: choice.precision,
        recall: choice.recall,
        f1: choice.f1,
        flagged: choice.flagged,
        rows,
    }
}

pub fn traffic_split(split: &TrafficSplit) -> pb::TrafficSplit {
    pb::TrafficSplit {
        name: split.name.clone(),
        alias: split.alias.clone(),
        arms: split
            .arms
            .iter()
            .map(|arm| pb::TrafficArm {
                version: arm.version,
                weight: arm.weight,
            })
            .collect(),
        salt: split.salt.clone(),
        started_at: Some(timestamp(split.started_at_millis)),
        ended_at: split.ended_at_millis.map(timestamp),
    }
}

pub fn experiment_report(report: &ExperimentReport) -> pb::ExperimentReportResponse {
    pb::ExperimentReportResponse {
        split: Some(traffic_split(&report.split)),
        arms: report
            .arms
            .iter()
            .map(|arm| pb::ArmReport {
                served_by: Some(pb::ServedBy {
                    name: arm.name.clone(),
                    version: arm.version,
                    sha256: arm.sha256.clone(),
                }),
                weight: arm.weight,
                customers: arm.customers,
                labelled: arm.rate.labelled,
                churned: arm.rate.churned,
                churn_rate: arm.rate.rate(),
                realized: arm.realized.as_ref().map(metrics),
                churn_rate_lower: arm.rate_interval.0,
                churn_rate_upper: arm.rate_interval.1,
                roc_auc_variance: arm.roc_auc_variance,
            })
            .collect(),
        comparisons: report
            .contrasts
            .iter()
            .map(|contrast| {
                let (roc_auc_difference, roc_auc_p_value, roc_auc_lower, roc_auc_upper) =
                    contrast.roc_auc.unwrap_or((0.0, 1.0, 0.0, 0.0));
                pb::ArmComparison {
                    baseline_version: contrast.baseline_version,
                    version: contrast.version,
                    churn_rate_difference: contrast.rates.difference,
                    churn_rate_p_value: contrast.rates.p_value,
                    roc_auc_difference,
                    roc_auc_p_value,
                    churn_rate_difference_lower: contrast.rates.lower,
                    churn_rate_difference_upper: contrast.rates.upper,
                    roc_auc_difference_lower: roc_auc_lower,
                    roc_auc_difference_upper: roc_auc_upper,
                    labelled_needed: contrast.labelled_needed,
                }
            })
            .collect(),
    }
}

pub fn drift_report(report: &DriftReport) -> pb::DriftReportResponse {
    let feature = |drift: &FeatureDrift| pb::FeatureDrift {
        feature: drift.feature.clone(),
        psi: drift.psi,
        bins: drift
            .bins
            .iter()
            .map(|bin| pb::DriftBin {
                label: bin.label.clone(),
                reference_fraction: bin.reference_fraction,
                serving_count: bin.serving_count,
            })
            .collect(),
    };
    pb::DriftReportResponse {
        served_by: Some(pb::ServedBy {
            name: report.name.clone(),
            version: report.version,
            sha256: report.sha256.clone(),
        }),
        rows: report.rows,
        features: report.features.iter().map(feature).collect(),
        prediction: Some(feature(&report.prediction)),
    }
}
