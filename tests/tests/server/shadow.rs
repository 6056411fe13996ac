//! Shadow scoring through the real server: what `production` serves is also scored by the
//! challenger off the request path; the agreement statistics equal those computed here
//! from both versions' own answers; callers never fail, even when the shadow does.

use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use tests::{BUNDLED_MODEL, FixtureCustomer, LGBM, TestServer, fixture};
use tonic::Code;

fn holdout() -> Vec<pb::Customer> {
    fixture("models/fixtures/telco-logreg.json", "customers")
        .iter()
        .map(FixtureCustomer::to_proto)
        .collect()
}

fn by_version(version: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version,
        alias: String::new(),
    })
}

async fn stats_when(
    server: &TestServer,
    done: impl Fn(&pb::ShadowStatsResponse) -> bool,
) -> pb::ShadowStatsResponse {
    let mut scoring = server.scoring().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stats = scoring
            .shadow_stats(pb::ShadowStatsRequest::default())
            .await
            .expect("stats")
            .into_inner();
        if done(&stats) {
            return stats;
        }
        assert!(
            Instant::now() < deadline,
            "the shadow fell behind: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Spearman's ρ from ranks counted pairwise: rank = 1 + #smaller + ½·#equal others.
fn spearman(pairs: &[(f64, f64)]) -> f64 {
    let rank = |values: Vec<f64>| -> Vec<f64> {
        values
            .iter()
            .map(|v| {
                let smaller = values.iter().filter(|w| *w < v).count() as f64;
                let equal = values.iter().filter(|w| *w == v).count() as f64 - 1.0;
                1.0 + smaller + equal / 2.0
            })
            .collect()
    };
    let x = rank(pairs.iter().map(|p| p.0).collect());
    let y = rank(pairs.iter().map(|p| p.1).collect());
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let cov: f64 = x.iter().zip(&y).map(|(a, b)| (a - mx) * (b - my)).sum();
    let vx: f64 = x.iter().map(|a| (a - mx).powi(2)).sum();
    let vy: f64 = y.iter().map(|b| (b - my).powi(2)).sum();
    cov / (vx * vy).sqrt()
}

fn predictions(response: &pb::ScoreBatchResponse) -> Vec<(f64, bool)> {
    response
        .results
        .iter()
        .map(|r| match &r.outcome {
            Some(pb::row_result::Outcome::Prediction(p)) => (p.churn_probability, p.will_churn),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_scores_what_production_serves_and_agrees_as_computed_here() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let mut registry = server.registry().await;
    let mut scoring = server.scoring().await;
    let shadow = registry
        .set_shadow(pb::SetShadowRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: LGBM.version,
            record: true,
        })
        .await
        .expect("set the shadow")
        .into_inner();
    assert_eq!(shadow.version, LGBM.version);

    let customers = holdout();
    let (batch, single) = customers.split_at(customers.len() - 5);
    scoring
        .score_batch(pb::ScoreBatchRequest {
            customers: batch.to_vec(),
            ..Default::default()
        })
        .await
        .expect("production batch");
    for customer in single {
        scoring
            .score(pb::ScoreRequest {
                customer: Some(customer.clone()),
                ..Default::default()
            })
            .await
            .expect("production score");
    }
    // By version number, not by the alias: not shadowed.
    scoring
        .score_batch(pb::ScoreBatchRequest {
            model: by_version(1),
            customers: customers.clone(),
            ..Default::default()
        })
        .await
        .expect("by version");

    let stats = stats_when(&server, |s| s.recorded == customers.len() as u64).await;
    assert_eq!(stats.compared, customers.len() as u64);
    assert_eq!((stats.dropped, stats.failed), (0, 0));

    let served = predictions(
        &scoring
            .score_batch(pb::ScoreBatchRequest {
                model: by_version(1),
                customers: customers.clone(),
                ..Default::default()
            })
            .await
            .expect("v1")
            .into_inner(),
    );
    let shadowed = predictions(
        &scoring
            .score_batch(pb::ScoreBatchRequest {
                model: by_version(LGBM.version),
                customers: customers.clone(),
                ..Default::default()
            })
            .await
            .expect("v2")
            .into_inner(),
    );
    let n = customers.len() as f64;
    let differences: Vec<f64> = served
        .iter()
        .zip(&shadowed)
        .map(|(a, b)| b.0 - a.0)
        .collect();
    let close = |ours: f64, expected: f64, what: &str| {
        assert!(
            (ours - expected).abs() < 1e-9,
            "{what}: {ours} vs {expected}"
        );
    };
    close(
        stats.mean_difference,
        differences.iter().sum::<f64>() / n,
        "mean",
    );
    close(
        stats.mean_abs_difference,
        differences.iter().map(|d| d.abs()).sum::<f64>() / n,
        "mean abs",
    );
    close(
        stats.max_abs_difference,
        differences.iter().map(|d| d.abs()).fold(0.0, f64::max),
        "max abs",
    );
    let agree = served
        .iter()
        .zip(&shadowed)
        .filter(|(a, b)| a.1 == b.1)
        .count();
    close(stats.label_agreement, agree as f64 / n, "label agreement");
    let both = served
        .iter()
        .zip(&shadowed)
        .filter(|(a, b)| a.1 && b.1)
        .count();
    assert_eq!(stats.both_churn, both as u64);
    assert_eq!(
        stats.both_churn + stats.served_only_churn + stats.shadow_only_churn + stats.neither_churn,
        stats.compared
    );
    // The pairs in the order the shadow saw them: the batch, then the single scores.
    let pairs: Vec<(f64, f64)> = served
        .iter()
        .zip(&shadowed)
        .map(|(a, b)| (a.0, b.0))
        .collect();
    close(stats.rank_correlation, spearman(&pairs), "spearman");
    assert!(stats.rank_correlation > 0.8, "two good models rank alike");

    // The same statistics on the metrics port.
    let scrape = tests::http_get(port, "/metrics").await.1;
    let labels = format!(
        r#"{{model="{BUNDLED_MODEL}",alias="production",shadow_version="{}"}}"#,
        LGBM.version
    );
    let exported = |family: &str| {
        tests::sample(&scrape, &format!("{family}{labels}"))
            .unwrap_or_else(|| panic!("{family}{labels} in {scrape}"))
    };
    assert_eq!(
        exported("churn_shadow_compared_total"),
        stats.compared as f64
    );
    assert_eq!(exported("churn_shadow_dropped_total"), 0.0);
    close(
        exported("churn_shadow_rank_correlation"),
        stats.rank_correlation,
        "exported spearman",
    );
    close(
        exported("churn_shadow_label_agreement"),
        stats.label_agreement,
        "exported agreement",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_never_fail_because_of_the_shadow_and_deleting_it_stops_it() {
    let server = TestServer::start().await;
    let mut registry = server.registry().await;
    let mut scoring = server.scoring().await;
    let missing = registry
        .set_shadow(pb::SetShadowRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: 99,
            record: false,
        })
        .await
        .expect_err("no version 99");
    assert_eq!(missing.code(), Code::NotFound);
    let status = scoring
        .shadow_stats(pb::ShadowStatsRequest::default())
        .await
        .expect_err("no shadow yet");
    assert_eq!(status.code(), Code::NotFound);

    registry
        .set_shadow(pb::SetShadowRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
            version: LGBM.version,
            record: false,
        })
        .await
        .expect("set the shadow");
    // An unseen contract: the logistic regression ignores it, LightGBM's coded input
    // refuses it. The caller gets its score; the shadow counts a failure.
    let mut customers = holdout();
    customers.truncate(10);
    customers[3].features.insert(
        "contract".to_owned(),
        pb::FeatureValue {
            kind: Some(pb::feature_value::Kind::Text("Ten year".to_owned())),
        },
    );
    let answered = scoring
        .score_batch(pb::ScoreBatchRequest {
            customers: customers.clone(),
            ..Default::default()
        })
        .await
        .expect("production answers")
        .into_inner();
    assert_eq!(
        predictions(&answered).len(),
        10,
        "every row scored for the caller"
    );
    let stats = stats_when(&server, |s| s.compared + s.failed == 10).await;
    assert_eq!((stats.compared, stats.failed), (9, 1));

    registry
        .delete_shadow(pb::DeleteShadowRequest {
            name: BUNDLED_MODEL.to_owned(),
            alias: "production".to_owned(),
        })
        .await
        .expect("delete the shadow");
    scoring
        .score_batch(pb::ScoreBatchRequest {
            customers,
            ..Default::default()
        })
        .await
        .expect("production answers");
    let status = scoring
        .shadow_stats(pb::ShadowStatsRequest::default())
        .await
        .expect_err("no shadow any more");
    assert_eq!(status.code(), Code::NotFound);
}
