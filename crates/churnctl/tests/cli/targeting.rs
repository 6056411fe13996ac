//! `churnctl evaluate` with a campaign's flags and `churnctl score-file --target profit`
//! against the real server: the figures EMP-PY gives, then a `contact` column for the
//! riskiest fraction it finds most profitable, or a budget ranked by expected profit.

use std::path::Path;

use tests::TestServer;

use crate::score_file::{churnctl, customers_csv, finished, path, run, write_csv};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_profit_contacts_the_most_profitable_fraction_or_a_budget() {
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let version = ["--model", "telco-churn", "--version", "1"];

    // A campaign of cheap contacts and reluctant churners, priced as EMP-PY prices it.
    let fixture = tests::profit_fixture();
    let case = fixture["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .find(|c| c["name"] == "telco-logreg hold-out / cheap contact, reluctant churners")
        .expect("case");
    let fraction = case["expected"]["mpc_fraction"].as_f64().expect("fraction");
    let evaluated = run(
        &server,
        &[
            "evaluate",
            "telco-churn/1",
            "--dataset",
            "telco-holdout",
            "--clv",
            "100",
            "--incentive-cost",
            "5",
            "--contact-cost",
            "0.5",
            "--acceptance-alpha",
            "2",
            "--acceptance-beta",
            "18",
        ],
    )
    .await;
    for field in ["empc", "empc_fraction", "mpc", "mpc_fraction"] {
        let ours = evaluated[field].as_f64().expect(field);
        let python = case["expected"][field].as_f64().expect(field);
        assert!((ours - python).abs() <= 1e-9, "{field}: {ours} vs {python}");
    }
    assert_eq!(evaluated["profit_parameters"]["clv"], 100.0);

    let (header, rows) = customers_csv(2_113);
    let input = path(dir.path(), "customers.csv");
    write_csv(&input, &header, &rows);
    let input = input.to_str().expect("path");
    let targeted = path(dir.path(), "targeted.csv");
    let mut args = vec!["score-file", input, targeted.to_str().expect("path")];
    args.extend(version);
    args.extend(["--target", "profit"]);
    let summary = run(&server, &args).await;
    let expected = (fraction * 2_113.0).round();
    assert_eq!(summary["contacted"].as_f64(), Some(expected));
    let read = |p: &Path| -> Vec<(f64, String)> {
        let mut reader = csv::Reader::from_path(p).expect("scores");
        let headers = reader.headers().expect("header").clone();
        let contact = headers
            .iter()
            .position(|h| h == "contact")
            .expect("contact");
        reader
            .records()
            .map(|r| {
                let r = r.expect("record");
                (r[1].parse().expect("probability"), r[contact].to_owned())
            })
            .collect()
    };
    let scored = read(&targeted);
    let contacted: Vec<f64> = scored
        .iter()
        .filter(|(_, c)| c == "true")
        .map(|s| s.0)
        .collect();
    let passed: Vec<f64> = scored
        .iter()
        .filter(|(_, c)| c == "false")
        .map(|s| s.0)
        .collect();
    assert_eq!(contacted.len() as f64, expected);
    assert_eq!(contacted.len() + passed.len(), 2_113);
    let lowest_contacted = contacted.iter().copied().fold(f64::INFINITY, f64::min);
    let highest_passed = passed.iter().copied().fold(0.0, f64::max);
    assert!(
        lowest_contacted > highest_passed,
        "{lowest_contacted} vs {highest_passed}"
    );

    // A budget ranked by expected profit: probability × value.
    let budgeted = path(dir.path(), "budgeted.csv");
    let mut args = vec!["score-file", input, budgeted.to_str().expect("path")];
    args.extend(version);
    args.extend([
        "--target",
        "profit",
        "--budget",
        "100",
        "--value-column",
        "monthlycharges",
    ]);
    let summary = run(&server, &args).await;
    assert_eq!(summary["contacted"], 100);
    let charges = header
        .iter()
        .position(|c| c == "monthlycharges")
        .expect("column");
    let mut ranked: Vec<(f64, usize, bool)> = read(&budgeted)
        .into_iter()
        .zip(&rows)
        .enumerate()
        .map(|(i, ((p, contact), row))| {
            let value: f64 = row[charges].parse().expect("charges");
            (p * value, i, contact == "true")
        })
        .collect();
    // A stable sort keeps input order among equal expected profits, as the budget's does.
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    assert!(ranked[..100].iter().all(|r| r.2) && ranked[100..].iter().all(|r| !r.2));

    let mut args = vec!["score-file", input, targeted.to_str().expect("path")];
    args.extend([
        "--model",
        "telco-churn",
        "--version",
        "2",
        "--target",
        "profit",
    ]);
    let output = finished(churnctl(&server, &args)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("version 2 has no evaluation with a campaign profit"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_threshold_show_the_campaign_as_emp_py_prices_it() {
    let server = TestServer::start().await;
    let fixture = tests::profit_fixture();
    let expected = |case: &str, field: &str| {
        let cases = fixture["cases"].as_array().expect("cases");
        let case = cases.iter().find(|c| c["name"] == case).expect("case");
        case["expected"][field].as_f64().expect(field)
    };
    let args = [
        "compare",
        "telco-churn",
        "--versions",
        "1,2",
        "--dataset",
        "telco-holdout",
    ];
    let output = finished(churnctl(&server, &args)).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let row = |metric: &str| {
        lines
            .iter()
            .find(|l| l["metric"] == metric)
            .unwrap_or_else(|| panic!("no {metric} row"))
    };
    let (logreg, lgbm) = (
        "telco-logreg hold-out / defaults",
        "telco-lgbm hold-out / defaults",
    );
    for (metric, field) in [("empc", "empc"), ("empc fraction", "empc_fraction")] {
        let shown = row(metric);
        for (column, case) in [("champion", logreg), ("challenger", lgbm)] {
            let ours = shown[column].as_f64().expect(column);
            assert!(
                (ours - expected(case, field)).abs() <= 1e-9,
                "{metric} {column}"
            );
        }
    }
    let difference = lines.last().expect("summary")["empc_difference"]
        .as_f64()
        .expect("empc_difference");
    let python = expected(lgbm, "empc") - expected(logreg, "empc");
    assert!(
        (difference - python).abs() <= 1e-9,
        "{difference} vs {python}"
    );

    let args = [
        "threshold",
        "telco-churn/1",
        "--dataset",
        "telco-holdout",
        "--objective",
        "profit",
    ];
    let suggested = run(&server, &args).await;
    let flagged = suggested["flagged"].as_f64().expect("flagged");
    let fraction = expected(logreg, "mpc_fraction");
    assert!((flagged / 2_113.0 - fraction).abs() < 1e-12, "{flagged}");

    // A 0 would read as "the default" on the wire: churnctl refuses it; the server
    // refuses an incentive above the customer's value, naming the field.
    for (flag, value, says) in [
        ("--clv", "0", "--clv 0"),
        (
            "--incentive-cost",
            "300",
            "InvalidArgument: profit.incentive_cost",
        ),
    ] {
        let args = [
            "evaluate",
            "telco-churn/1",
            "--dataset",
            "telco-holdout",
            flag,
            value,
        ];
        let refused = finished(churnctl(&server, &args)).await;
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success());
        assert!(stderr.contains(says), "{stderr}");
    }
}
