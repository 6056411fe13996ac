//! Realized-performance sums in the conformance suite: on random logs, folded in pieces
//! between writes that arrive out of order, the sums equal what the full join gives.

use std::collections::BTreeMap;

use super::*;

const DAY: i64 = 86_400_000;
/// 2026-01-27: cohorts of every period cross a month's and a week's edge within the log.
const LOG_START: i64 = 1_769_472_000_000;

/// SplitMix64, so that a failing seed reproduces.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Per cohort start: (probability bits, decision, label) → customers.
type Cells = BTreeMap<i64, BTreeMap<(u64, bool, Option<bool>), u64>>;

/// What the join says: each customer's last prediction in each cohort of `period`, with
/// its label by the default horizon.
async fn joined(registry: &Registry, version: u32, period: CohortPeriod) -> Cells {
    let window = PredictionWindow {
        name: "churn".to_owned(),
        source: PredictionSource::Version(version),
        since_millis: i64::MIN,
        until_millis: i64::MAX - i64::from(DEFAULT_HORIZON_DAYS) * DAY,
        horizon_millis: i64::from(DEFAULT_HORIZON_DAYS) * DAY,
    };
    let mut last: BTreeMap<(String, i64), LabelledPrediction> = BTreeMap::new();
    registry
        .scan_labelled_predictions(&window, |p| {
            last.insert((p.customer_id.clone(), period.start(p.scored_at_millis)), p);
        })
        .await
        .expect("joined");
    let mut cells = Cells::new();
    for ((_, start), p) in last {
        *cells
            .entry(start)
            .or_default()
            .entry((p.probability.to_bits(), p.will_churn, p.churned))
            .or_default() += 1;
    }
    cells
}

/// What the sums say, from `kept_from` on.
async fn summed(registry: &Registry, version: u32, period: CohortPeriod) -> (i64, Cells) {
    let sums = registry
        .performance_sums("churn", version, period, i64::MIN, i64::MAX)
        .await
        .expect("sums");
    let mut cells = Cells::new();
    for cohort in sums.cohorts {
        let cell = cells.entry(cohort.start_millis).or_default();
        for count in cohort.counts {
            *cell
                .entry((count.probability.to_bits(), count.will_churn, count.churned))
                .or_default() += count.customers;
        }
    }
    (sums.kept_from_millis, cells)
}

/// Per arm: (probability bits, label) → customers.
type Arms = BTreeMap<(u32, u64, Option<bool>), u64>;

/// What the join says of the running split: each customer's first prediction through it
/// by an arm's version, labelled by the default horizon.
async fn arms_joined(registry: &Registry, split: &TrafficSplit) -> Arms {
    let window = PredictionWindow {
        name: split.name.clone(),
        source: PredictionSource::Alias(split.alias.clone()),
        since_millis: split.started_at_millis,
        until_millis: i64::MAX / 2,
        horizon_millis: i64::from(DEFAULT_HORIZON_DAYS) * DAY,
    };
    let mut first: BTreeMap<String, LabelledPrediction> = BTreeMap::new();
    registry
        .scan_labelled_predictions(&window, |p| {
            if split.arms.iter().any(|arm| arm.version == p.version) {
                first.entry(p.customer_id.clone()).or_insert(p);
            }
        })
        .await
        .expect("joined");
    let mut arms = Arms::new();
    for p in first.into_values() {
        *arms
            .entry((p.version, p.probability.to_bits(), p.churned))
            .or_default() += 1;
    }
    arms
}

async fn arms_summed(registry: &Registry, split: &TrafficSplit) -> Arms {
    let (_, counts) = registry
        .experiment_sums(&split.name, &split.alias, split.started_at_millis)
        .await
        .expect("sums");
    let mut arms = Arms::new();
    for count in counts {
        *arms
            .entry((count.version, count.probability.to_bits(), count.churned))
            .or_default() += count.customers;
    }
    arms
}

async fn fold_everything(registry: &Registry, limit: usize) {
    while registry.fold_performance(limit).await.expect("folded") > 0 {}
}

async fn assert_sums_equal_the_join(registry: &Registry, seed: u64, stage: &str) {
    for version in [1, 2] {
        for period in CohortPeriod::ALL {
            let (kept_from, mut sums) = summed(registry, version, period).await;
            let mut join = joined(registry, version, period).await;
            // Cohorts cut by the retention are answered from the log, not the sums.
            for cells in [&mut sums, &mut join] {
                cells.retain(|&start, _| start >= kept_from);
            }
            assert_eq!(
                sums, join,
                "seed {seed}, {stage}: version {version}, {period:?} cohorts"
            );
        }
    }
}

/// A running split of `production` between versions 1 and 2, evenly.
async fn even_split(registry: &Registry) -> TrafficSplit {
    let arm = |version| TrafficArm { version, weight: 1 };
    let split = NewTrafficSplit {
        name: "churn".to_owned(),
        alias: "production".to_owned(),
        arms: vec![arm(1), arm(2)],
        salt: String::new(),
    };
    registry
        .set_traffic_split(&split, &actor())
        .await
        .expect("split")
}

pub(super) async fn performance_sums_equal_the_join_on_random_logs(store: Store) {
    let registry = two_versions(&store).await;
    // Predictions before the split count in the cohorts only; those after it, through its
    // alias, in the split's arms too.
    let split = even_split(&registry).await;
    let log_start = |seed: u64| {
        if seed.is_multiple_of(2) {
            LOG_START
        } else {
            split.started_at_millis - 20 * DAY
        }
    };
    for seed in 0..4_u64 {
        let mut random = Random(seed);
        // A few customers, a shared namespace across seeds: each seed adds to the log.
        let customer = |random: &mut Random| format!("c{}", random.below(40));
        for round in 0..6 {
            let predictions: Vec<LoggedPrediction> = (0..random.below(300) + 1)
                .map(|_| {
                    // Probabilities from a small set tie; others do not, and take all 53
                    // bits, which a fold must read back exactly. Times arrive out of
                    // order, some on the same millisecond.
                    let probability = if random.below(2) == 0 {
                        random.below(8) as f64 / 8.0
                    } else {
                        (random.next() >> 11) as f64 / (1_u64 << 53) as f64
                    };
                    LoggedPrediction {
                        name: "churn".to_owned(),
                        version: 1 + random.below(3) as u32,
                        alias: ["", "production", "staging"][random.below(3) as usize].to_owned(),
                        customer_id: customer(&mut random),
                        probability,
                        will_churn: probability >= 0.5,
                        scored_at_millis: log_start(seed)
                            + random.below(150) as i64 * DAY
                            + random.below(3) as i64 * 3_600_000,
                    }
                })
                .collect();
            registry
                .log_predictions(&predictions)
                .await
                .expect("logged");
            let outcomes: Vec<OutcomeRecord> = (0..random.below(40))
                .map(|_| OutcomeRecord {
                    customer_id: customer(&mut random),
                    churned: random.below(2) == 0,
                    observed_at_millis: log_start(seed)
                        + random.below(250) as i64 * DAY
                        + random.below(3) as i64 * 3_600_000,
                })
                .collect();
            registry
                .record_outcomes(&outcomes, i64::from(DEFAULT_HORIZON_DAYS) * DAY)
                .await
                .expect("recorded");
            // Folds of a few rows at a time leave some of a customer's rows waiting.
            let limit = [7, 50, 1_000][random.below(3) as usize];
            if round % 2 == 1 {
                fold_everything(&registry, limit).await;
                assert_sums_equal_the_join(&registry, seed, &format!("round {round}")).await;
                assert_eq!(
                    arms_summed(&registry, &split).await,
                    arms_joined(&registry, &split).await,
                    "seed {seed}, round {round}: the split's arms"
                );
            } else {
                registry.fold_performance(limit).await.expect("folded");
            }
        }
        fold_everything(&registry, 100).await;
        assert_sums_equal_the_join(&registry, seed, "all folded").await;
        assert_eq!(
            arms_summed(&registry, &split).await,
            arms_joined(&registry, &split).await,
            "seed {seed}: the split's arms"
        );
    }
    assert!(
        arms_joined(&registry, &split).await.len() > 20,
        "the split's arms hold customers"
    );
    // The retention cuts cohorts: those wholly before it go, those it cuts are the log's.
    let cut = LOG_START + 40 * DAY + 5 * 3_600_000;
    assert!(
        registry
            .delete_predictions_before(cut)
            .await
            .expect("deleted")
            > 0
    );
    let (kept_from, sums) = summed(&registry, 1, CohortPeriod::Month).await;
    assert_eq!(kept_from, cut);
    assert!(
        sums.keys()
            .all(|&start| start >= CohortPeriod::Month.start(cut)),
        "the sums of months wholly before the cut are gone"
    );
    assert_sums_equal_the_join(&registry, 99, "after the retention").await;
    assert_eq!(
        registry.fold_performance(100).await.expect("folded"),
        0,
        "nothing waits"
    );
}

/// A customer scored thousands of times keeps a few folded rows a day: the last of each
/// version and alias, and the first the split took. The sums still equal the join.
pub(super) async fn a_customer_scored_again_and_again_keeps_a_few_folded_rows_a_day(store: Store) {
    let registry = two_versions(&store).await;
    let split = even_split(&registry).await;
    let mut random = Random(7);
    let days = 3;
    for round in 0..6 {
        let predictions: Vec<LoggedPrediction> = (0..500)
            .map(|_| {
                let (version, alias) =
                    [(1, "production"), (2, "production"), (1, "")][random.below(3) as usize];
                let probability = random.below(1 << 20) as f64 / f64::from(1 << 20);
                LoggedPrediction {
                    name: "churn".to_owned(),
                    version,
                    alias: alias.to_owned(),
                    customer_id: ["hot", "hot", "hot", "c1", "c2"][random.below(5) as usize]
                        .to_owned(),
                    probability,
                    will_churn: probability >= 0.5,
                    // Some before the split started, out of order within each day.
                    scored_at_millis: split.started_at_millis - DAY
                        + random.below(days) as i64 * DAY
                        + random.below(DAY as u64) as i64,
                }
            })
            .collect();
        registry
            .log_predictions(&predictions)
            .await
            .expect("logged");
        if round == 3 {
            let outcome = OutcomeRecord {
                customer_id: "hot".to_owned(),
                churned: true,
                observed_at_millis: split.started_at_millis + DAY / 2,
            };
            registry
                .record_outcomes(&[outcome], i64::from(DEFAULT_HORIZON_DAYS) * DAY)
                .await
                .expect("recorded");
        }
        fold_everything(&registry, [60, 1_000][round % 2]).await;
        assert_sums_equal_the_join(&registry, round as u64, "a hot customer").await;
        assert_eq!(
            arms_summed(&registry, &split).await,
            arms_joined(&registry, &split).await,
            "round {round}: the split's arms"
        );
        let (folded, superseded): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN folded = 1 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN folded = 2 THEN 1 ELSE 0 END), 0) \
             FROM predictions WHERE customer_id = 'hot'",
        )
        .fetch_one(&registry.pool)
        .await
        .expect("counted");
        // Up to 4 UTC days (3 days from a time of day) × 3 version-alias pairs, and the
        // split's first.
        assert!(
            folded <= 4 * 3 + 1,
            "round {round}: {folded} folded rows of the hot customer kept"
        );
        assert!(superseded > 0, "round {round}: nothing superseded");
    }
}
