//! Shapley values of any model, with the raw features as the players and the interventional
//! value function `v(S) = mean over background rows z of margin(x_S, z_rest)`: exact by
//! enumerating every coalition when that fits the budget, else estimated from antithetic
//! pairs of random permutations (a permutation and its reverse), whose spread gives the
//! reported error. Either way the attributions sum exactly to `v(all) - v(none)`.

/// The cooperative game to solve: how many players, and the coalition values.
pub(crate) trait Game {
    type Error;
    fn players(&self) -> usize;
    /// Model evaluations one coalition costs.
    fn cost_per_coalition(&self) -> usize;
    /// `v(S)` for each coalition, given as "feature `i` comes from the explained row".
    fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<f64>, Self::Error>;
}

/// Attributions and the bound on their sampling error (0 when enumerated).
#[derive(Debug, Clone)]
pub(crate) struct Estimate {
    pub values: Vec<f64>,
    pub sampling_error: f64,
    pub exact: bool,
}

/// How much work an estimate may do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    /// Model evaluations (rows) at most.
    pub evaluations: usize,
    /// Stop sampling once the error bound is below this.
    pub tolerance: f64,
    pub seed: u64,
}

/// Antithetic pairs sampled before the error bound is trusted to stop early.
const MIN_PAIRS: usize = 4;
/// Coalitions valued per call to the game, so that each model run is a large batch.
const PAIRS_PER_CALL: usize = 2;

pub(crate) fn solve<G: Game>(
    game: &mut G,
    none: f64,
    all: f64,
    budget: Budget,
) -> Result<Estimate, G::Error> {
    let players = game.players();
    let enumeration = 1usize
        .checked_shl(players as u32)
        .map(|c| c.saturating_mul(game.cost_per_coalition()));
    if players < 2 || enumeration.is_some_and(|e| e <= budget.evaluations) {
        return exact(game, none, all);
    }
    permutations(game, none, all, budget)
}

fn exact<G: Game>(game: &mut G, none: f64, all: f64) -> Result<Estimate, G::Error> {
    let players = game.players();
    let full = (1usize << players) - 1;
    let inner: Vec<Vec<bool>> = (1..full).map(|mask| membership(mask, players)).collect();
    let mut value = Vec::with_capacity(full + 1);
    value.push(none);
    value.extend(game.values(&inner)?);
    value.push(all);
    let factorial = |n: usize| (1..=n).map(|k| k as f64).product::<f64>();
    let total = factorial(players);
    let weight: Vec<f64> = (0..players)
        .map(|size| factorial(size) * factorial(players - size - 1) / total)
        .collect();
    let mut values = vec![0.0; players];
    for mask in 0..=full {
        let size = mask.count_ones() as usize;
        for (player, attribution) in values.iter_mut().enumerate() {
            if mask >> player & 1 == 0 {
                *attribution += weight[size] * (value[mask | 1 << player] - value[mask]);
            }
        }
    }
    Ok(Estimate {
        values,
        sampling_error: 0.0,
        exact: true,
    })
}

fn permutations<G: Game>(
    game: &mut G,
    none: f64,
    all: f64,
    budget: Budget,
) -> Result<Estimate, G::Error> {
    let players = game.players();
    // A permutation values the players - 1 coalitions strictly between none and all.
    let per_pair = 2 * (players - 1) * game.cost_per_coalition();
    let max_pairs = (budget.evaluations / per_pair.max(1)).max(MIN_PAIRS);
    let mut rng = SplitMix64(budget.seed);
    let mut mean = vec![0.0; players];
    let mut squares = vec![0.0; players];
    let mut pairs = 0;
    while pairs < max_pairs {
        let batch = PAIRS_PER_CALL.min(max_pairs - pairs);
        let orders: Vec<Vec<usize>> = (0..batch)
            .flat_map(|_| {
                let order = rng.permutation(players);
                let reverse = order.iter().rev().copied().collect();
                [order, reverse]
            })
            .collect();
        let coalitions: Vec<Vec<bool>> = orders
            .iter()
            .flat_map(|order| {
                (1..players).map(move |k| {
                    let mut member = vec![false; players];
                    order[..k].iter().for_each(|&p| member[p] = true);
                    member
                })
            })
            .collect();
        let values = game.values(&coalitions)?;
        for (pair, chunk) in values.chunks(2 * (players - 1)).enumerate() {
            let mut sample = vec![0.0; players];
            for (order, path) in orders[2 * pair..2 * pair + 2]
                .iter()
                .zip(chunk.chunks(players - 1))
            {
                let mut previous = none;
                for (k, &player) in order.iter().enumerate() {
                    let current = path.get(k).copied().unwrap_or(all);
                    sample[player] += (current - previous) / 2.0;
                    previous = current;
                }
            }
            pairs += 1;
            // Welford's running mean and sum of squared deviations.
            for (p, &x) in sample.iter().enumerate() {
                let delta = x - mean[p];
                mean[p] += delta / pairs as f64;
                squares[p] += delta * (x - mean[p]);
            }
        }
        let error = sampling_error(&squares, pairs);
        if pairs >= MIN_PAIRS && error <= budget.tolerance {
            break;
        }
    }
    Ok(Estimate {
        sampling_error: sampling_error(&squares, pairs),
        values: mean,
        exact: false,
    })
}

/// The largest standard error over the players, times the two-sided 99.99% quantile of
/// Student's t for the samples taken: wide enough that every one of a few dozen
/// attributions stays within it nearly always.
fn sampling_error(squares: &[f64], samples: usize) -> f64 {
    if samples < 2 {
        return f64::INFINITY;
    }
    let n = samples as f64;
    let largest_variance = squares.iter().fold(0.0f64, |m, &s| m.max(s / (n - 1.0)));
    t_quantile(samples - 1) * (largest_variance / n).sqrt()
}

fn t_quantile(degrees_of_freedom: usize) -> f64 {
    const TABLE: [(usize, f64); 15] = [
        (1, 6366.2),
        (2, 99.99),
        (3, 28.0),
        (4, 15.54),
        (5, 11.18),
        (6, 9.08),
        (7, 7.88),
        (8, 7.12),
        (9, 6.59),
        (10, 6.21),
        (12, 5.69),
        (15, 5.24),
        (20, 4.84),
        (30, 4.48),
        (60, 4.17),
    ];
    // The quantile falls with the degrees of freedom: the nearest tabulated one below is
    // the conservative choice.
    TABLE
        .iter()
        .rev()
        .find(|(dof, _)| *dof <= degrees_of_freedom)
        .map_or(f64::INFINITY, |&(_, t)| t)
}

fn membership(mask: usize, players: usize) -> Vec<bool> {
    (0..players).map(|p| mask >> p & 1 == 1).collect()
}

/// SplitMix64: a tiny, well-mixed generator; explanations are reproducible for a seed.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    /// A uniformly random order of `0..n` (Fisher-Yates).
    fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            order.swap(i, self.below(i + 1));
        }
        order
    }

    /// Shuffles `values` in place (Fisher-Yates).
    pub(crate) fn shuffle<T>(&mut self, values: &mut [T]) {
        for i in (1..values.len()).rev() {
            values.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    /// A game defined by a function of the coalition, with a fixed cost.
    struct Function<F> {
        players: usize,
        cost: usize,
        value: F,
        evaluations: usize,
    }

    impl<F: Fn(&[bool]) -> f64> Game for Function<F> {
        type Error = Infallible;
        fn players(&self) -> usize {
            self.players
        }
        fn cost_per_coalition(&self) -> usize {
            self.cost
        }
        fn values(&mut self, coalitions: &[Vec<bool>]) -> Result<Vec<f64>, Infallible> {
            self.evaluations += coalitions.len() * self.cost;
            Ok(coalitions.iter().map(|c| (self.value)(c)).collect())
        }
    }

    fn value_of(weights: &[f64], seed: u64) -> impl Fn(&[bool]) -> f64 + use<'_> {
        // Additive terms plus pairwise and triple interactions that depend on the seed.
        move |c: &[bool]| {
            let on = |i: usize| f64::from(u8::from(c[i % c.len()]));
            let additive: f64 = weights.iter().enumerate().map(|(i, w)| w * on(i)).sum();
            let s = (seed % 7) as f64;
            additive + 0.8 * on(1) * on(3) - (0.5 + 0.1 * s) * on(2) * on(5) * on(7)
                + 0.3 * on(0) * on(9)
        }
    }

    #[test]
    fn enumeration_gives_known_values_and_sums_exactly() {
        // v(S) = 1[a] + 2·1[b] + 3·1[a and b]: the interaction is split evenly.
        let mut game = Function {
            players: 3,
            cost: 1,
            value: |c: &[bool]| {
                f64::from(u8::from(c[0]))
                    + 2.0 * f64::from(u8::from(c[1]))
                    + 3.0 * f64::from(u8::from(c[0] && c[1]))
            },
            evaluations: 0,
        };
        let budget = Budget {
            evaluations: 1000,
            tolerance: 0.0,
            seed: 1,
        };
        let estimate = solve(&mut game, 0.0, 6.0, budget).expect("infallible");
        assert!(estimate.exact);
        assert_eq!(estimate.values, vec![2.5, 3.5, 0.0]);
    }

    #[test]
    fn sampled_values_stay_within_their_reported_error_of_the_exact_ones() {
        let players = 12;
        let mut within = 0;
        let mut total = 0;
        for seed in 0..60u64 {
            let weights: Vec<f64> = (0..players)
                .map(|i| ((seed * 31 + i as u64 * 17) % 11) as f64 / 5.0 - 1.0)
                .collect();
            let value = value_of(&weights, seed);
            let all = value(&vec![true; players]);
            let none = value(&vec![false; players]);
            let mut exact_game = Function {
                players,
                cost: 1,
                value: &value,
                evaluations: 0,
            };
            let exact = solve(
                &mut exact_game,
                none,
                all,
                Budget {
                    evaluations: 1 << 20,
                    tolerance: 0.0,
                    seed,
                },
            )
            .expect("infallible");
            assert!(exact.exact);
            let mut sampled_game = Function {
                players,
                cost: 50,
                value: &value,
                evaluations: 0,
            };
            let budget = Budget {
                evaluations: 40_000,
                tolerance: 0.0,
                seed,
            };
            let sampled = solve(&mut sampled_game, none, all, budget).expect("infallible");
            assert!(!sampled.exact && sampled.sampling_error > 0.0);
            assert!(
                sampled_game.evaluations <= 40_000,
                "{} evaluations",
                sampled_game.evaluations
            );
            let sum: f64 = sampled.values.iter().sum();
            assert!(
                (sum - (all - none)).abs() < 1e-9,
                "efficiency: {sum} vs {}",
                all - none
            );
            let worst = exact
                .values
                .iter()
                .zip(&sampled.values)
                .map(|(e, s)| (e - s).abs())
                .fold(0.0, f64::max);
            total += 1;
            within += usize::from(worst <= sampled.sampling_error);
        }
        assert_eq!(
            within, total,
            "the reported error must bound every customer's attributions"
        );
    }

    #[test]
    fn an_additive_game_stops_early_with_zero_error() {
        let players = 19;
        let weights: Vec<f64> = (0..players).map(|i| i as f64 - 9.0).collect();
        let value = |c: &[bool]| {
            weights
                .iter()
                .zip(c)
                .filter(|(_, on)| **on)
                .map(|(w, _)| w)
                .sum::<f64>()
        };
        let mut game = Function {
            players,
            cost: 100,
            value,
            evaluations: 0,
        };
        let all: f64 = weights.iter().sum();
        let budget = Budget {
            evaluations: 1 << 20,
            tolerance: 1e-6,
            seed: 3,
        };
        let estimate = solve(&mut game, 0.0, all, budget).expect("infallible");
        assert_eq!(game.evaluations, MIN_PAIRS * 2 * (players - 1) * 100);
        for (w, v) in weights.iter().zip(&estimate.values) {
            assert!((w - v).abs() < 1e-9);
        }
        assert!(estimate.sampling_error < 1e-9);
    }
}
