//! Exact interventional TreeSHAP (Lundberg et al. 2020, "independent" TreeSHAP): for each
//! background row the trees are walked once for the explained row and the background row
//! together, splitting only where the two go different ways. A leaf reached with `a`
//! features taken from the explained row and `b` from the background row credits each of
//! the first `value · (a-1)! b! / (a+b)!` and debits each of the second
//! `value · a! (b-1)! / (a+b)!`; averaging over the background gives the Shapley values
//! of the margin.

use churn_engine::{Tree, TreeEnsemble, TreeNode};

/// Attributions per input column, in margin units; they sum to
/// `margin(row) - mean(margin(background))`.
pub(crate) fn attributions(
    ensemble: &TreeEnsemble,
    row: &[f64],
    background: &[Vec<f64>],
) -> Vec<f64> {
    let weights = Weights::new(ensemble.columns);
    let mut totals = vec![0.0; ensemble.columns];
    let mut walk = Walk {
        row,
        reference: &[],
        weights: &weights,
        totals: &mut totals,
        path: Vec::with_capacity(64),
    };
    for reference in background {
        walk.reference = reference;
        for tree in &ensemble.trees {
            walk.visit(tree, 0, 0, 0);
        }
    }
    let count = background.len().max(1) as f64;
    totals.iter_mut().for_each(|t| *t /= count);
    totals
}

/// `weight(p, q) = p! q! / (p + q + 1)!`, tabulated.
struct Weights {
    size: usize,
    table: Vec<f64>,
}

impl Weights {
    fn new(columns: usize) -> Self {
        let size = columns + 1;
        let mut table = vec![0.0; size * size];
        for p in 0..size {
            for q in 0..size {
                // p! q! / (p+q+1)! = 1 / ((p+q+1) * C(p+q, p)).
                let mut binomial = 1.0;
                for k in 1..=p {
                    binomial = binomial * (q + k) as f64 / k as f64;
                }
                table[p * size + q] = 1.0 / ((p + q + 1) as f64 * binomial);
            }
        }
        Weights { size, table }
    }

    fn get(&self, p: usize, q: usize) -> f64 {
        self.table[p * self.size + q]
    }
}

struct Walk<'a> {
    row: &'a [f64],
    reference: &'a [f64],
    weights: &'a Weights,
    totals: &'a mut [f64],
    /// Columns where the two rows split apart on this path, and which row they follow.
    path: Vec<(usize, bool)>,
}

impl Walk<'_> {
    fn visit(&mut self, tree: &Tree, index: usize, from_row: usize, from_reference: usize) {
        match tree.nodes[index] {
            TreeNode::Leaf { value } => self.credit(value, from_row, from_reference),
            TreeNode::Split {
                column,
                rule,
                threshold,
                missing_goes_true,
                when_true,
                when_false,
            } => {
                let child = |goes_true: bool| if goes_true { when_true } else { when_false };
                let row_goes = rule.goes_true(self.row[column], threshold, missing_goes_true);
                let reference_goes =
                    rule.goes_true(self.reference[column], threshold, missing_goes_true);
                let decided = self
                    .path
                    .iter()
                    .find(|(c, _)| *c == column)
                    .map(|&(_, r)| r);
                match decided {
                    Some(true) => self.visit(tree, child(row_goes), from_row, from_reference),
                    Some(false) => {
                        self.visit(tree, child(reference_goes), from_row, from_reference)
                    }
                    None if row_goes == reference_goes => {
                        self.visit(tree, child(row_goes), from_row, from_reference)
                    }
                    None => {
                        self.path.push((column, true));
                        self.visit(tree, child(row_goes), from_row + 1, from_reference);
                        self.path.last_mut().expect("just pushed").1 = false;
                        self.visit(tree, child(reference_goes), from_row, from_reference + 1);
                        self.path.pop();
                    }
                }
            }
        }
    }

    fn credit(&mut self, value: f64, from_row: usize, from_reference: usize) {
        if from_row + from_reference == 0 {
            return;
        }
        let gain = if from_row > 0 {
            value * self.weights.get(from_row - 1, from_reference)
        } else {
            0.0
        };
        let loss = if from_reference > 0 {
            value * self.weights.get(from_row, from_reference - 1)
        } else {
            0.0
        };
        for &(column, follows_row) in &self.path {
            self.totals[column] += if follows_row { gain } else { -loss };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use churn_engine::SplitRule;

    fn split(column: usize, threshold: f64, when_true: usize, when_false: usize) -> TreeNode {
        TreeNode::Split {
            column,
            rule: SplitRule::LessOrEqual,
            threshold,
            missing_goes_true: true,
            when_true,
            when_false,
        }
    }

    fn leaf(value: f64) -> TreeNode {
        TreeNode::Leaf { value }
    }

    /// Shapley values by enumerating every coalition of the interventional game.
    fn brute_force(ensemble: &TreeEnsemble, row: &[f64], background: &[Vec<f64>]) -> Vec<f64> {
        let m = ensemble.columns;
        let value = |mask: usize| {
            background
                .iter()
                .map(|z| {
                    let hybrid: Vec<f64> = (0..m)
                        .map(|c| if mask >> c & 1 == 1 { row[c] } else { z[c] })
                        .collect();
                    ensemble.margin(&hybrid)
                })
                .sum::<f64>()
                / background.len() as f64
        };
        let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
        (0..m)
            .map(|i| {
                (0..1usize << m)
                    .filter(|mask| mask >> i & 1 == 0)
                    .map(|mask| {
                        let s = mask.count_ones() as usize;
                        factorial(s) * factorial(m - s - 1) / factorial(m)
                            * (value(mask | 1 << i) - value(mask))
                    })
                    .sum()
            })
            .collect()
    }

    #[test]
    fn matches_coalition_enumeration_with_repeated_features_and_missing_values() {
        // Tree 1 tests column 0 twice on one path (the case the path bookkeeping exists
        // for); tree 2 mixes columns 1 and 2 with an interaction.
        let ensemble = TreeEnsemble {
            trees: vec![
                Tree {
                    nodes: vec![
                        split(0, 0.5, 1, 2),
                        split(1, 1.0, 3, 4),
                        split(0, 2.0, 5, 6),
                        leaf(-1.0),
                        leaf(0.25),
                        leaf(0.75),
                        leaf(2.0),
                    ],
                },
                Tree {
                    nodes: vec![
                        split(2, 0.0, 1, 2),
                        leaf(0.5),
                        split(1, 3.0, 3, 4),
                        leaf(-0.5),
                        leaf(1.5),
                    ],
                },
            ],
            base_value: -0.3,
            columns: 3,
        };
        let background = vec![
            vec![0.0, 0.0, 1.0],
            vec![1.0, 2.0, -1.0],
            vec![3.0, 5.0, 2.0],
            vec![f64::NAN, 4.0, 0.5],
        ];
        for row in [[2.5, 0.5, -2.0], [0.1, 4.0, 3.0], [f64::NAN, 1.0, 0.0]] {
            let fast = attributions(&ensemble, &row, &background);
            let slow = brute_force(&ensemble, &row, &background);
            for (f, s) in fast.iter().zip(&slow) {
                assert!((f - s).abs() < 1e-12, "{fast:?} vs {slow:?}");
            }
            let mean: f64 = background.iter().map(|z| ensemble.margin(z)).sum::<f64>() / 4.0;
            let sum: f64 = fast.iter().sum();
            assert!((sum - (ensemble.margin(&row) - mean)).abs() < 1e-12);
        }
    }
}
