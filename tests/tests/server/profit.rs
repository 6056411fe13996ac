//! The profit of a retention campaign through the real server: Evaluate, stored
//! evaluations, Compare, the promotion gate and SuggestThreshold against EMP-PY's and
//! empulse's numbers for the same hold-out predictions (`models/fixtures/profit.json`),
//! and every refusal naming its field.

use churn_api::v1 as pb;
use tests::{
    BUNDLED_MODEL, TestServer, assert_profit_matches, fixture, profit_campaign, profit_fixture,
};
use tonic::Code;

const HOLDOUT: &str = "telco-holdout";
const LOGREG: &str = "telco-logreg hold-out";
const LGBM: &str = "telco-lgbm hold-out";
const COSTLY: &str = "valuable customers, costly offer";

fn version(number: u32) -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: BUNDLED_MODEL.to_owned(),
        version: number,
        alias: String::new(),
    })
}

fn evaluation(number: u32, profit: Option<pb::ProfitParameters>) -> pb::EvaluateRequest {
    pb::EvaluateRequest {
        model: version(number),
        dataset: HOLDOUT.to_owned(),
        profit,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluations_price_the_campaign_as_emp_py_and_empulse_and_store_it() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let fixture = profit_fixture();
    for (number, profit, case) in [
        (1, None, format!("{LOGREG} / defaults")),
        (
            1,
            Some(profit_campaign(&fixture, COSTLY)),
            format!("{LOGREG} / {COSTLY}"),
        ),
        (
            1,
            Some(profit_campaign(&fixture, "uniform acceptance")),
            format!("{LOGREG} / uniform acceptance"),
        ),
        (
            2,
            Some(profit_campaign(&fixture, COSTLY)),
            format!("{LGBM} / {COSTLY}"),
        ),
    ] {
        let response = scoring
            .evaluate(evaluation(number, profit))
            .await
            .expect("evaluates")
            .into_inner();
        let metrics = response.metrics.expect("metrics");
        let profit = metrics.profit.as_ref().expect("profit");
        assert_profit_matches(profit, &fixture, &case);
        assert!(profit.profit_curve.len() > 100, "{case}");
        assert_eq!(profit.profit_curve[0].threshold, f64::INFINITY);
    }
    let stored = server
        .registry()
        .await
        .list_evaluations(pb::ListEvaluationsRequest {
            name: BUNDLED_MODEL.to_owned(),
            version: 1,
        })
        .await
        .expect("lists")
        .into_inner()
        .evaluations;
    let oldest = stored
        .last()
        .expect("stored")
        .metrics
        .as_ref()
        .expect("metrics");
    assert_profit_matches(
        oldest.profit.as_ref().expect("stored profit"),
        &fixture,
        &format!("{LOGREG} / defaults"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_gate_and_threshold_decide_by_profit() {
    let server = TestServer::start().await;
    let fixture = profit_fixture();
    let mut scoring = server.scoring().await;
    let compared = scoring
        .compare(pb::CompareRequest {
            champion: version(1),
            challenger: version(2),
            dataset: HOLDOUT.to_owned(),
            ..Default::default()
        })
        .await
        .expect("compares")
        .into_inner();
    let empc = |e: &Option<pb::EvaluateResponse>| {
        let metrics = e.as_ref().expect("evaluation").metrics.as_ref();
        metrics.expect("metrics").profit.clone().expect("profit")
    };
    assert_profit_matches(
        &empc(&compared.champion),
        &fixture,
        &format!("{LOGREG} / defaults"),
    );
    assert_profit_matches(
        &empc(&compared.challenger),
        &fixture,
        &format!("{LGBM} / defaults"),
    );
    let difference = empc(&compared.challenger).empc - empc(&compared.champion).empc;
    assert_eq!(compared.empc_difference, difference);
    assert!(difference < 0.0, "LightGBM earns less here: {difference}");

    // The suggested threshold contacts exactly the fraction EMP-PY says maximizes profit.
    let suggested = scoring
        .suggest_threshold(pb::SuggestThresholdRequest {
            model: version(1),
            dataset: HOLDOUT.to_owned(),
            objective: "profit".to_owned(),
            profit: Some(profit_campaign(&fixture, COSTLY)),
            ..Default::default()
        })
        .await
        .expect("suggests")
        .into_inner();
    let case = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == format!("{LOGREG} / {COSTLY}"))
        .expect("case");
    let fraction = case["expected"]["mpc_fraction"].as_f64().expect("fraction");
    assert_eq!(suggested.rows, 2113);
    let contacted = suggested.flagged as f64 / suggested.rows as f64;
    assert!(
        (contacted - fraction).abs() < 1e-12,
        "{contacted} vs {fraction}"
    );
    let holdout = fixture["score_sets"][LOGREG]["scores"]
        .as_array()
        .expect("scores")
        .iter()
        .filter(|s| s.as_f64().expect("score") >= suggested.threshold)
        .count();
    assert_eq!(holdout as u64, suggested.flagged);
    let nobody = scoring
        .suggest_threshold(pb::SuggestThresholdRequest {
            model: version(1),
            dataset: HOLDOUT.to_owned(),
            objective: "profit".to_owned(),
            profit: Some(profit_campaign(&fixture, "no campaign pays")),
            ..Default::default()
        })
        .await
        .expect_err("no campaign pays");
    assert_eq!(nobody.code(), Code::FailedPrecondition);
    assert!(
        nobody.message().contains("contacting nobody"),
        "{}",
        nobody.message()
    );

    let mut registry = server.registry().await;
    let promote = |max_empc_drop: f64| pb::SetAliasRequest {
        name: BUNDLED_MODEL.to_owned(),
        alias: "production".to_owned(),
        version: 2,
        gate: Some(pb::PromotionGate {
            dataset: HOLDOUT.to_owned(),
            max_empc_drop: Some(max_empc_drop),
            ..Default::default()
        }),
    };
    let refused = registry
        .set_alias(promote(0.0))
        .await
        .expect_err("the challenger earns less");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let message = refused.message();
    assert!(
        message.contains(&format!(
            "EMPC {:.4} is {:.4} below version 1's",
            empc(&compared.challenger).empc,
            -difference
        )),
        "{message}"
    );
    let moved = registry
        .set_alias(promote(0.2))
        .await
        .expect("within the allowed drop")
        .into_inner();
    assert_eq!(moved.version, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nonsense_campaigns_and_one_class_are_invalid_arguments() {
    let server = TestServer::start().await;
    let mut scoring = server.scoring().await;
    let defaults = pb::ProfitParameters::default();
    let cases = [
        (
            pb::ProfitParameters {
                clv: -5.0,
                ..defaults
            },
            "profit.clv",
        ),
        (
            pb::ProfitParameters {
                incentive_cost: 250.0,
                ..defaults
            },
            "profit.incentive_cost",
        ),
        (
            pb::ProfitParameters {
                clv: 50.0,
                incentive_cost: 50.0,
                ..defaults
            },
            "profit.incentive_cost",
        ),
        (
            pb::ProfitParameters {
                contact_cost: -1.0,
                ..defaults
            },
            "profit.contact_cost",
        ),
        (
            pb::ProfitParameters {
                acceptance_alpha: -1.0,
                ..defaults
            },
            "profit.acceptance_alpha",
        ),
        (
            pb::ProfitParameters {
                acceptance_beta: -0.5,
                ..defaults
            },
            "profit.acceptance_beta",
        ),
    ];
    let mut registry = server.registry().await;
    for (profit, field) in cases {
        let evaluated = scoring.evaluate(evaluation(1, Some(profit))).await;
        let suggested = scoring
            .suggest_threshold(pb::SuggestThresholdRequest {
                model: version(1),
                dataset: HOLDOUT.to_owned(),
                objective: "profit".to_owned(),
                profit: Some(profit),
                ..Default::default()
            })
            .await;
        let gated = registry
            .set_alias(pb::SetAliasRequest {
                name: BUNDLED_MODEL.to_owned(),
                alias: "production".to_owned(),
                version: 2,
                gate: Some(pb::PromotionGate {
                    dataset: HOLDOUT.to_owned(),
                    max_empc_drop: Some(0.0),
                    profit: Some(profit),
                    ..Default::default()
                }),
            })
            .await;
        for refused in [
            evaluated.map(drop).expect_err(field),
            suggested.map(drop).expect_err(field),
            gated.map(drop).expect_err(field),
        ] {
            let message = refused.message();
            assert_eq!(refused.code(), Code::InvalidArgument, "{message}");
            assert!(message.starts_with(field), "{message}");
        }
    }

    let stayers: Vec<pb::LabeledCustomer> =
        fixture("models/fixtures/telco-logreg.json", "customers")
            .iter()
            .take(30)
            .map(|c| pb::LabeledCustomer {
                customer: Some(c.to_proto()),
                churned: false,
            })
            .collect();
    let refused = scoring
        .evaluate(pb::EvaluateRequest {
            model: version(1),
            rows: stayers,
            ..Default::default()
        })
        .await
        .expect_err("one class");
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("all 30 rows are retained"),
        "{}",
        refused.message()
    );
}
