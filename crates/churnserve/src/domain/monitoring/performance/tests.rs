//! Cohort edges, and the sums against the join on random logs and windows.

use super::*;

fn millis(text: &str) -> i64 {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339")
        .timestamp_millis()
}

#[test]
fn cohorts_start_at_utc_day_iso_week_and_month_edges() {
    for (at, period, start) in [
        (
            "2026-03-01T00:00:00Z",
            CohortPeriod::Day,
            "2026-03-01T00:00:00Z",
        ),
        (
            "2026-02-28T23:59:59.999Z",
            CohortPeriod::Day,
            "2026-02-28T00:00:00Z",
        ),
        (
            "2026-02-23T00:00:00Z",
            CohortPeriod::Week,
            "2026-02-23T00:00:00Z",
        ),
        (
            "2026-02-22T23:59:59.999Z",
            CohortPeriod::Week,
            "2026-02-16T00:00:00Z",
        ),
        (
            "2026-03-01T00:00:00Z",
            CohortPeriod::Month,
            "2026-03-01T00:00:00Z",
        ),
        (
            "2026-02-28T23:59:59.999Z",
            CohortPeriod::Month,
            "2026-02-01T00:00:00Z",
        ),
        (
            "1969-12-31T23:59:59.999Z",
            CohortPeriod::Week,
            "1969-12-29T00:00:00Z",
        ),
        (
            "2028-02-29T12:00:00Z",
            CohortPeriod::Month,
            "2028-02-01T00:00:00Z",
        ),
    ] {
        assert_eq!(period.start(millis(at)), millis(start), "{at} {period:?}");
    }
}

/// SplitMix64, so that a failing seed reproduces.
fn random(state: &mut u64, below: u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) % below
}

/// Every cohort's numbers, NaN included, as text to compare bit for bit.
fn numbers(cohorts: BTreeMap<i64, CohortRows>) -> Vec<String> {
    cohorts
        .into_iter()
        .map(|(start, rows)| match rows.performance(start, 0.5) {
            Ok(performance) => format!("{performance:?}"),
            Err(error) => format!("{start}: {error}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sums_give_the_joins_numbers_for_any_window() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::open(dir.path()).await.expect("registry");
    let start = millis("2026-01-27T00:00:00Z");
    let mut state = 7;
    let mut logged = Vec::new();
    for _ in 0..2_000 {
        let probability = random(&mut state, 64) as f64 / 64.0;
        logged.push(churn_registry::LoggedPrediction {
            name: "churn".to_owned(),
            version: 1,
            alias: String::new(),
            customer_id: format!("c{}", random(&mut state, 150)),
            probability,
            will_churn: probability >= 0.5,
            scored_at_millis: start + random(&mut state, 120 * DAY_MILLIS as u64) as i64,
        });
    }
    registry.log_predictions(&logged).await.expect("logged");
    let outcomes: Vec<OutcomeRecord> = (0..150)
        .map(|customer| OutcomeRecord {
            customer_id: format!("c{customer}"),
            churned: random(&mut state, 3) == 0,
            observed_at_millis: start + random(&mut state, 200 * DAY_MILLIS as u64) as i64,
        })
        .collect();
    registry
        .record_outcomes(&outcomes, i64::from(DEFAULT_HORIZON_DAYS) * DAY_MILLIS)
        .await
        .expect("recorded");
    while registry.fold_performance(500).await.expect("folded") > 0 {}
    let mut windows = vec![(i64::MIN, i64::MAX / 2)];
    for _ in 0..40 {
        // Edges on a prediction, a millisecond off one, or anywhere.
        let edge = |state: &mut u64| {
            let at = logged[random(state, logged.len() as u64) as usize].scored_at_millis;
            at + [0, 1, -1][random(state, 3) as usize]
        };
        let (a, b) = (edge(&mut state), edge(&mut state));
        windows.push((a.min(b), a.max(b)));
        windows.push((start - DAY_MILLIS, a));
        windows.push((a, start + 130 * DAY_MILLIS));
    }
    let mut compared = 0;
    for cut in [None, Some(start + 50 * DAY_MILLIS + 1_234)] {
        if let Some(cut) = cut {
            registry
                .delete_predictions_before(cut)
                .await
                .expect("deleted");
        }
        for &(since, until) in &windows {
            for period in CohortPeriod::ALL {
                let request = PerformanceRequest {
                    selector: ModelSelector::by_number("churn".to_owned(), 1),
                    since_millis: since,
                    until_millis: until,
                    period,
                    horizon_days: DEFAULT_HORIZON_DAYS,
                };
                let summed = summed(&registry, ("churn", 1), &request)
                    .await
                    .expect("summed");
                let mut joined = BTreeMap::new();
                join(
                    &registry,
                    ("churn", 1),
                    &request,
                    DEFAULT_HORIZON_DAYS,
                    &mut joined,
                )
                .await
                .expect("joined");
                compared += joined.len();
                let (summed, joined) = (numbers(summed), numbers(joined));
                let differ =
                    summed.len() != joined.len() || summed.iter().zip(&joined).any(|(a, b)| a != b);
                assert!(
                    !differ,
                    "{period:?} cohorts of [{since}, {until}), retention cut {cut:?}: \
                     the sums give {} cohorts, the join {}; first difference: {:?}",
                    summed.len(),
                    joined.len(),
                    summed
                        .iter()
                        .zip(&joined)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| (&a[..a.len().min(160)], &b[..b.len().min(160)]))
                );
            }
        }
    }
    assert!(compared > 5_000, "{compared} cohorts compared");
}
