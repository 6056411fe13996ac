//! Traffic splits in the conformance suite: set, reweighted, restarted, ended by
//! `SetAlias`, refused when malformed, and the predictions that came through them.

use super::*;

fn split(arms: &[(u32, u32)], salt: &str) -> NewTrafficSplit {
    NewTrafficSplit {
        name: "churn".to_owned(),
        alias: "production".to_owned(),
        arms: arms
            .iter()
            .map(|&(version, weight)| TrafficArm { version, weight })
            .collect(),
        salt: salt.to_owned(),
    }
}

pub(super) async fn traffic_splits_are_set_reweighted_ended_and_audited(store: Store) {
    let registry = two_versions(&store).await;
    let started = registry
        .set_traffic_split(&split(&[(1, 50), (2, 50)], ""), &actor())
        .await
        .expect("split");
    assert_eq!(
        started.salt.len(),
        32,
        "a salt is picked when none is given"
    );
    assert_eq!(
        registry
            .traffic_split("churn", "production")
            .await
            .expect("running"),
        started
    );
    assert_eq!(
        registry.traffic_splits(None).await.expect("listed"),
        vec![started.clone()]
    );
    let reweighted = registry
        .set_traffic_split(&split(&[(1, 10), (2, 90)], ""), &actor())
        .await
        .expect("reweighted");
    assert_eq!(
        (reweighted.salt.as_str(), reweighted.started_at_millis),
        (started.salt.as_str(), started.started_at_millis),
        "new weights keep the experiment"
    );
    assert_eq!(reweighted.arms[1].weight, 90);

    let error = registry
        .archive("churn", 2, &actor())
        .await
        .expect_err("an arm");
    assert!(matches!(error, RegistryError::Conflict(_)), "{error}");
    assert!(error.to_string().contains("traffic split"), "{error}");

    let restarted = registry
        .set_traffic_split(&split(&[(2, 1), (1, 1)], "fixed"), &actor())
        .await
        .expect("restarted");
    assert_eq!(restarted.salt, "fixed");
    assert_eq!(
        registry
            .version("churn", &VersionRef::Alias("production".to_owned()))
            .await
            .expect("alias")
            .version,
        2,
        "the alias points at the first arm"
    );

    registry
        .set_alias("churn", "production", 1, &actor())
        .await
        .expect("moved");
    assert!(matches!(
        registry.traffic_split("churn", "production").await,
        Err(RegistryError::TrafficSplitNotFound { .. })
    ));
    let ended = registry
        .latest_traffic_split("churn", "production")
        .await
        .expect("still readable");
    assert_eq!(
        registry.experiments("churn").await.expect("listed"),
        vec![ended.clone()],
        "the latest split of each alias"
    );
    assert_eq!(ended.salt, "fixed");
    assert!(ended.ended_at_millis.is_some());
    registry
        .archive("churn", 2, &actor())
        .await
        .expect("no longer an arm");

    let actions: Vec<String> = registry
        .audit_log()
        .await
        .expect("audit")
        .into_iter()
        .map(|entry| entry.action)
        .filter(|action| action.contains("traffic_split"))
        .collect();
    assert_eq!(
        actions,
        [
            "set_traffic_split",
            "set_traffic_split",
            "end_traffic_split",
            "set_traffic_split",
            "end_traffic_split"
        ]
    );
}

pub(super) async fn malformed_splits_are_refused_naming_the_field(store: Store) {
    let registry = two_versions(&store).await;
    for (arms, field) in [
        (&[][..], "arms:"),
        (&[(1, 0), (2, 0)][..], "arms.weight"),
        (&[(1, 1), (1, 2)][..], "arms[1].version"),
        (&[(0, 1)][..], "arms[0].version"),
    ] {
        let error = registry
            .set_traffic_split(&split(arms, ""), &actor())
            .await
            .expect_err("malformed");
        assert!(matches!(error, RegistryError::Invalid(_)), "{error}");
        assert!(error.to_string().starts_with(field), "{field}: {error}");
    }
    assert!(matches!(
        registry
            .set_traffic_split(&split(&[(1, 1), (7, 1)], ""), &actor())
            .await,
        Err(RegistryError::VersionNotFound { version: 7, .. })
    ));
    registry
        .archive("churn", 2, &actor())
        .await
        .expect("archived");
    assert!(matches!(
        registry
            .set_traffic_split(&split(&[(1, 1), (2, 1)], ""), &actor())
            .await,
        Err(RegistryError::Conflict(_))
    ));
    assert!(matches!(
        registry.traffic_split("nobody", "production").await,
        Err(RegistryError::ModelNotFound(_))
    ));
    assert!(
        registry
            .traffic_splits(None)
            .await
            .expect("listed")
            .is_empty(),
        "nothing half-written"
    );
}

pub(super) async fn predictions_are_read_by_the_alias_they_came_through(store: Store) {
    let registry = two_versions(&store).await;
    let logged = |customer: &str, version: u32, alias: &str| LoggedPrediction {
        name: "churn".to_owned(),
        version,
        alias: alias.to_owned(),
        customer_id: customer.to_owned(),
        probability: 0.5,
        will_churn: true,
        scored_at_millis: 1_000,
    };
    registry
        .log_predictions(&[
            logged("a", 1, "production"),
            logged("b", 2, "production"),
            logged("c", 2, ""),
            logged("d", 1, "staging"),
        ])
        .await
        .expect("logged");
    let mut seen = Vec::new();
    registry
        .scan_labelled_predictions(
            &PredictionWindow {
                name: "churn".to_owned(),
                source: PredictionSource::Alias("production".to_owned()),
                since_millis: 0,
                until_millis: 2_000,
                horizon_millis: 1,
            },
            |p| seen.push((p.customer_id, p.version)),
        )
        .await
        .expect("scanned");
    assert_eq!(seen, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
}
