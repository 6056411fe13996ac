//! The web console of a real server, read over its HTTP port: the model page shows every
//! version with the ROC AUC the API stores, a chart has one point per point of the API's
//! curve, bad paths get a 404 or 400 page (never a 500), what a registrant wrote is shown
//! as text, and the read token is asked for and honoured as a bearer header or a cookie.
//! (Headless Chromium drives the same pages in tests/console/console.test.mjs.)

use churn_api::v1 as pb;
use tests::{TestServer, http_exchange, http_get, http_request, register, repo_bytes};

const MODEL: &str = "telco-churn";

/// The value of `attribute` on the element that carries `marker`, searched from `marker`.
fn attribute_after<'a>(html: &'a str, marker: &str, attribute: &str) -> Option<&'a str> {
    let start = html.find(marker)?;
    let rest = &html[start..];
    let value = &rest[rest.find(&format!("{attribute}=\""))? + attribute.len() + 2..];
    value.split('"').next()
}

fn header(headers: &[String], name: &str) -> String {
    headers
        .iter()
        .find_map(|h| {
            let (key, value) = h.split_once(": ")?;
            key.eq_ignore_ascii_case(name).then(|| value.to_owned())
        })
        .unwrap_or_else(|| panic!("{name} header"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_apis_numbers_and_one_point_per_curve_point() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let compared = server
        .scoring()
        .await
        .compare(pb::CompareRequest {
            champion: Some(pb::ModelRef {
                name: MODEL.to_owned(),
                version: 1,
                alias: String::new(),
            }),
            challenger: Some(pb::ModelRef {
                name: MODEL.to_owned(),
                version: 2,
                alias: String::new(),
            }),
            dataset: "telco-holdout".to_owned(),
            ..Default::default()
        })
        .await
        .expect("compares")
        .into_inner();

    let (status, models) = http_get(port, "/").await;
    assert!(status.contains("200"), "{status}");
    assert!(models.contains(r#"data-alias="production" data-version="1""#));
    assert!(models.contains(r#"data-alias="challenger" data-version="2""#));

    let (status, page) = http_get(port, &format!("/models/{MODEL}")).await;
    assert!(status.contains("200"), "{status}");
    let evaluations = server
        .registry()
        .await
        .list_evaluations(pb::ListEvaluationsRequest {
            name: MODEL.to_owned(),
            version: 0,
        })
        .await
        .expect("lists")
        .into_inner()
        .evaluations;
    for version in [1, 2] {
        let latest = evaluations
            .iter()
            .find(|e| e.served_by.as_ref().expect("served_by").version == version)
            .expect("evaluated");
        let row = &page[page
            .find(&format!(r#"<tr data-version="{version}">"#))
            .expect("a row per version")..];
        let row = &row[..row.find("</tr>").expect("row end")];
        let auc = format!("{:.4}", latest.metrics.as_ref().expect("metrics").roc_auc);
        assert!(
            row.contains(&format!(r#"<td class="num roc-auc">{auc}</td>"#)),
            "{row}"
        );
    }
    assert!(page.contains("record_evaluation"), "the audit history");

    let (status, version_page) = http_get(port, &format!("/models/{MODEL}/versions/2")).await;
    assert!(status.contains("200"), "{status}");
    let metrics = compared
        .challenger
        .as_ref()
        .and_then(|c| c.metrics.as_ref())
        .expect("challenger metrics");
    for (label, points) in [
        ("ROC curve", metrics.roc_curve.len()),
        ("Precision-recall curve", metrics.pr_curve.len()),
        ("Lift", metrics.lift.len()),
    ] {
        let figure = &version_page[version_page
            .find(&format!(r#"aria-label="{label}""#))
            .unwrap_or_else(|| panic!("{label} chart"))..];
        assert_eq!(
            attribute_after(figure, "data-series=\"v2\"", "data-points"),
            Some(points.to_string().as_str()),
            "{label}"
        );
        let series = &figure[figure.find("data-series=\"v2\"").expect("series")..];
        let series = &series[..series.find("</g>").expect("series end")];
        assert_eq!(series.matches("<circle").count(), points, "{label}");
    }
    assert!(
        metrics.roc_curve.len() > 100,
        "an exact curve, not a sketch"
    );
    for label in ["Calibration", "Cumulative gain", "Feature importance"] {
        assert!(
            version_page.contains(&format!(r#"role="img" aria-label="{label}""#)),
            "{label}"
        );
    }

    let mut compare = String::new();
    for _ in 0..120 {
        let (status, page) = http_get(port, &format!("/models/{MODEL}/compare")).await;
        assert!(status.contains("200"), "{status}");
        compare = page;
        if !compare.contains("are being computed") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let comparison = compared.roc_auc_difference.expect("comparison");
    assert!(
        compare.contains(&format!(
            r#"<span class="p-value">{:.4}</span>"#,
            comparison.p_value
        )),
        "the DeLong p-value of Compare"
    );
    let roc = &compare[compare.find(r#"aria-label="ROC curve""#).expect("ROC")..];
    for version in ["v1", "v2"] {
        assert!(
            roc[..roc.find("</svg>").expect("svg end")]
                .contains(&format!(r#"data-series="{version}""#)),
            "{version} on the same axes"
        );
    }
    let (status, _) = http_get(port, &format!("/models/{MODEL}/monitoring")).await;
    assert!(status.contains("200"), "{status}");
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_paths_get_a_page_and_registrants_text_stays_text() {
    let (server, port) = TestServer::start_with_http(|_| {}).await;
    let script = "<script>alert('description')</script>";
    let mut registry = server.registry().await;
    register(
        &mut registry,
        pb::RegisterModelMetadata {
            name: "hostile".to_owned(),
            description: script.to_owned(),
            tags: [(
                "<img src=x onerror=alert(1)>".to_owned(),
                "\"><b>bold</b>".to_owned(),
            )]
            .into(),
            ..Default::default()
        },
        &repo_bytes("models/telco-logreg.onnx"),
    )
    .await
    .expect("registers");
    let (status, page) = http_get(port, "/models/hostile").await;
    assert!(status.contains("200"), "{status}");
    for raw in [script, "<img src=x", "<b>bold</b>"] {
        assert!(!page.contains(raw), "{raw} is escaped");
    }
    assert!(page.contains("&lt;script&gt;alert('description')&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));

    let long = "x".repeat(10 * 1024);
    for (path, expected) in [
        ("/models/nobody".to_owned(), "404"),
        (format!("/models/{MODEL}/versions/0"), "404"),
        (format!("/models/{MODEL}/versions/99"), "404"),
        (format!("/models/{MODEL}/versions/two"), "400"),
        (format!("/models/{MODEL}/versions/1?evaluation=nope"), "404"),
        (format!("/models/{MODEL}?before=soon"), "400"),
        (format!("/models/{MODEL}/compare?champion=0"), "404"),
        (format!("/models/{MODEL}/compare?dataset=missing"), "404"),
        (format!("/models/{long}"), "404"),
        (
            "/models/%3Cscript%3Ealert(1)%3C%2Fscript%3E".to_owned(),
            "404",
        ),
    ] {
        let (status, body) = http_get(port, &path).await;
        let shown = &path[..path.len().min(80)];
        assert!(status.contains(expected), "{shown}: {status}");
        assert!(body.contains("<!DOCTYPE html>"), "{shown}: a page");
        assert!(!body.contains("<script>"), "{shown}: escaped");
    }
    server.stop().await.expect("stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_token_is_asked_for_and_kept_in_a_cookie() {
    let (server, port) =
        TestServer::start_with_http(|config| config.read_token = Some("reader".into())).await;
    let (status, page) = http_get(port, &format!("/models/{MODEL}")).await;
    assert!(status.contains("401"), "{status}");
    assert!(page.contains(r#"<form class="login" method="post" action="/login">"#));
    assert!(page.contains(&format!(r#"name="next" value="/models/{MODEL}""#)));

    let bearer = http_request(
        port,
        "GET",
        &format!("/models/{MODEL}"),
        &[("authorization", "Bearer reader")],
        b"",
    )
    .await;
    assert!(bearer.0.contains("200"), "{}", bearer.0);

    let form = [("content-type", "application/x-www-form-urlencoded")];
    let (status, _, _) = http_exchange(
        port,
        "POST",
        "/login",
        &form,
        b"token=wrong&next=%2Fmodels%2Ftelco-churn",
    )
    .await;
    assert!(status.contains("403"), "{status}");
    let (status, headers, _) = http_exchange(
        port,
        "POST",
        "/login",
        &form,
        b"token=reader&next=%2Fmodels%2Ftelco-churn",
    )
    .await;
    assert!(status.contains("303"), "{status}");
    assert_eq!(header(&headers, "location"), format!("/models/{MODEL}"));
    let cookie = header(&headers, "set-cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("name=value").to_owned();
    let (status, _) = http_request(port, "GET", "/", &[("cookie", &pair)], b"").await;
    assert!(status.contains("200"), "{status}");

    let (status, headers, _) = http_exchange(
        port,
        "POST",
        "/login",
        &form,
        b"token=reader&next=https%3A%2F%2Felsewhere.example",
    )
    .await;
    assert!(status.contains("303"), "{status}");
    assert_eq!(header(&headers, "location"), "/", "never sent away");
    let (probe, _) = http_get(port, "/healthz").await;
    assert!(probe.contains("200"), "probes stay open");
    server.stop().await.expect("stops");
}
