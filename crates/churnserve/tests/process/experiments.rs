//! A traffic split served by two replicas on one PostgreSQL registry: while both score
//! without pause, the weights change ten times through either replica and no call fails;
//! afterwards both answer every customer with the same arm, the one the contract's hash
//! gives; and the experiment report counts the customers either replica answered.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use churn_api::v1 as pb;
use churn_api::v1::monitoring_service_client::MonitoringServiceClient;
use churn_api::v1::scoring_service_client::ScoringServiceClient;
use sha2::{Digest, Sha256};

use crate::common::customer;
use crate::common::replicas::{Replica, runtime};
use crate::replicas::exclusive_backing;

const MODEL: &str = "telco-churn";

fn production() -> Option<pb::ModelRef> {
    Some(pb::ModelRef {
        name: MODEL.to_owned(),
        alias: "production".to_owned(),
        version: 0,
    })
}

fn customer_with(id: &str) -> pb::Customer {
    pb::Customer {
        customer_id: id.to_owned(),
        ..customer()
    }
}

/// The contract's assignment, written here from its text.
fn arm(salt: &str, id: &str, weights: &[u32]) -> usize {
    let digest = Sha256::digest(format!("{salt}:{id}").as_bytes());
    let h = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let b = ((u128::from(h) * u128::from(total)) >> 64) as u64;
    let mut running = 0;
    weights
        .iter()
        .position(|&w| {
            running += u64::from(w);
            running > b
        })
        .expect("a positive weight")
}

async fn set_weights(replica: &Replica, weights: [u32; 2]) -> pb::TrafficSplit {
    replica
        .registry()
        .await
        .set_traffic_split(pb::SetTrafficSplitRequest {
            name: MODEL.to_owned(),
            alias: "production".to_owned(),
            arms: vec![
                pb::TrafficArm {
                    version: 1,
                    weight: weights[0],
                },
                pb::TrafficArm {
                    version: 2,
                    weight: weights[1],
                },
            ],
            salt: String::new(),
        })
        .await
        .expect("split")
        .into_inner()
}

/// Each row's version, as `replica` answers `ids` through the split.
async fn arms_on(replica: &Replica, ids: &[String]) -> Vec<u32> {
    let response = replica
        .scoring()
        .await
        .score_batch(pb::ScoreBatchRequest {
            model: production(),
            customers: ids.iter().map(|id| customer_with(id)).collect(),
            ..Default::default()
        })
        .await
        .expect("scored")
        .into_inner();
    response
        .results
        .iter()
        .map(|row| row.served_by.as_ref().map_or(0, |served| served.version))
        .collect()
}

#[test]
fn two_replicas_split_alike_never_fail_while_weights_change_and_report_together() {
    let (_turn, backing) = exclusive_backing();
    let replicas = [backing.replica("a"), backing.replica("b")];
    runtime().block_on(async {
        let split = set_weights(&replicas[0], [50, 50]).await;
        let salt = split.salt.clone();

        // Scoring loops on both replicas, each customer id used once.
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let scored_ids = Arc::new(Mutex::new(BTreeSet::new()));
        let loops: Vec<_> = (0..4)
            .map(|i| {
                let address = replicas[i % 2].address.clone();
                let (stop, failed, scored_ids) = (
                    Arc::clone(&stop),
                    Arc::clone(&failed),
                    Arc::clone(&scored_ids),
                );
                tokio::spawn(async move {
                    let mut client = ScoringServiceClient::connect(address)
                        .await
                        .expect("connect");
                    let mut k = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let id = format!("L{i}-{k}");
                        k += 1;
                        let request = pb::ScoreRequest {
                            model: production(),
                            customer: Some(customer_with(&id)),
                            top_reasons: 0,
                        };
                        match client.score(request).await {
                            Ok(_) => {
                                scored_ids.lock().expect("ids").insert(id);
                            }
                            Err(status) => {
                                eprintln!("score failed: {status:?}");
                                failed.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                        }
                    }
                })
            })
            .collect();
        for change in 0..10u32 {
            let weights = [10 + 8 * change, 90 - 8 * change];
            let set = set_weights(&replicas[change as usize % 2], weights).await;
            assert_eq!(set.salt, salt, "new weights keep the experiment");
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        set_weights(&replicas[1], [50, 50]).await;
        stop.store(true, Ordering::Relaxed);
        for scoring in loops {
            scoring.await.expect("scoring loop");
        }
        let scored = scored_ids.lock().expect("ids").len();
        assert_eq!(
            failed.load(Ordering::Relaxed),
            0,
            "failed calls of {scored} while the weights changed ten times"
        );
        assert!(scored > 100, "the loops scored {scored}");

        // Within a second both replicas follow the last change, and agree on every arm.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let ids: Vec<String> = (0..200).map(|k| format!("C-{k}")).collect();
        let expected: Vec<u32> = ids
            .iter()
            .map(|id| [1, 2][arm(&salt, id, &[50, 50])])
            .collect();
        assert_eq!(arms_on(&replicas[0], &ids).await, expected, "replica a");
        assert_eq!(arms_on(&replicas[1], &ids).await, expected, "replica b");
        assert!(expected.contains(&1) && expected.contains(&2));

        // The report reads the prediction log of both replicas.
        let customers = scored_ids.lock().expect("ids").len() as u64 + ids.len() as u64;
        let mut monitoring = MonitoringServiceClient::connect(replicas[1].address.clone())
            .await
            .expect("connect");
        let started = Instant::now();
        loop {
            let report = monitoring
                .experiment_report(pb::ExperimentReportRequest {
                    name: MODEL.to_owned(),
                    alias: "production".to_owned(),
                    ..Default::default()
                })
                .await
                .expect("report")
                .into_inner();
            let counted: u64 = report.arms.iter().map(|a| a.customers).sum();
            if counted == customers {
                assert!(report.arms.iter().all(|a| a.customers > 0), "{report:?}");
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the report counts {counted} of the {customers} customers both replicas answered"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    backing.assert_undamaged();
}
