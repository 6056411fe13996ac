//! Traffic splits as they are served: which arm answers a customer, by the contract's hash
//! (so that a data team can reproduce it in SQL or Spark, and a customer keeps their arm
//! across restarts and replicas), and the scoring request's route through the catalog.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::domain::serving::served::ServedModel;

/// The arm of `customer_id` among arms of `weights`, in order: `h` is the first 8 bytes
/// of SHA-256 of `salt + ":" + customer_id` read big-endian, `b = floor(h × W / 2^64)`
/// with `W` the weights' sum, and the arm is the first whose running sum exceeds `b`.
pub fn arm_of(salt: &str, customer_id: &str, running_sums: &[u64]) -> usize {
    let total = running_sums.last().copied().unwrap_or(0);
    let digest = Sha256::new()
        .chain_update(salt.as_bytes())
        .chain_update(b":")
        .chain_update(customer_id.as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let h = u64::from_be_bytes(first);
    let b = ((u128::from(h) * u128::from(total)) >> 64) as u64;
    running_sums.partition_point(|&sum| sum <= b)
}

/// The running sums of the weights, in order: what `arm_of` reads.
pub fn running_sums(weights: impl IntoIterator<Item = u32>) -> Vec<u64> {
    weights
        .into_iter()
        .scan(0u64, |sum, weight| {
            *sum += u64::from(weight);
            Some(*sum)
        })
        .collect()
}

/// A split with every arm loaded: what a scoring request through it routes by.
#[derive(Debug)]
pub struct ServedSplit {
    pub salt: String,
    /// The loaded version of each arm, in the split's order.
    pub arms: Vec<Arc<ServedModel>>,
    running_sums: Vec<u64>,
}

impl ServedSplit {
    pub fn new(salt: String, arms: Vec<(Arc<ServedModel>, u32)>) -> ServedSplit {
        let running_sums = running_sums(arms.iter().map(|(_, weight)| *weight));
        ServedSplit {
            salt,
            arms: arms.into_iter().map(|(served, _)| served).collect(),
            running_sums,
        }
    }

    /// The index of the arm that answers `customer_id`.
    pub fn arm_of(&self, customer_id: &str) -> usize {
        arm_of(&self.salt, customer_id, &self.running_sums)
    }

    /// The first arm: what the alias means wherever one version must answer.
    pub fn baseline(&self) -> &Arc<ServedModel> {
        &self.arms[0]
    }
}

/// What answers a scoring request, and the alias it came through (empty when it named a
/// version), which the prediction log records.
#[derive(Debug, Clone)]
pub struct Route {
    pub alias: Arc<str>,
    pub target: RouteTarget,
}

#[derive(Debug, Clone)]
pub enum RouteTarget {
    Version(Arc<ServedModel>),
    Split(Arc<ServedSplit>),
}

impl Route {
    /// The one version that answers, or the split's baseline.
    pub fn baseline(&self) -> &Arc<ServedModel> {
        match &self.target {
            RouteTarget::Version(served) => served,
            RouteTarget::Split(split) => split.baseline(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `models/fixtures/assignment.json`: arms by the contract's formula, written
    /// independently in Python (`models/experiment_fixture.py`).
    #[test]
    fn arms_equal_the_independent_python_vectors() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/fixtures/assignment.json"
        );
        let cases: Vec<serde_json::Value> =
            serde_json::from_str(&std::fs::read_to_string(path).expect("fixture")).expect("JSON");
        assert!(cases.len() > 400);
        for case in cases {
            let weights: Vec<u32> = case["weights"]
                .as_array()
                .expect("weights")
                .iter()
                .map(|w| w.as_u64().expect("weight") as u32)
                .collect();
            let (salt, id) = (
                case["salt"].as_str().expect("salt"),
                case["customer_id"].as_str().expect("id"),
            );
            assert_eq!(
                arm_of(salt, id, &running_sums(weights.iter().copied())) as u64,
                case["arm"].as_u64().expect("arm"),
                "{case}"
            );
        }
    }

    #[test]
    fn zero_weights_take_no_customer_and_shares_follow_the_weights() {
        let sums = running_sums([0, 1, 0, 3]);
        let mut counts = [0usize; 4];
        for i in 0..40_000 {
            counts[arm_of("salt", &format!("customer-{i}"), &sums)] += 1;
        }
        assert_eq!((counts[0], counts[2]), (0, 0));
        let share = counts[3] as f64 / 40_000.0;
        assert!((share - 0.75).abs() < 0.01, "{counts:?}");
    }
}
