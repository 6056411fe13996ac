//! Drift as the contract fixes it: a numeric feature's bin edges are the deciles of its
//! reference values (numpy's `quantile`, default method), and the population stability
//! index compares counts in fixed bins.

/// Shares below this count as this, so that an empty bin has a finite index.
pub const PSI_FLOOR: f64 = 1e-4;

/// The `q` quantile of ascending, non-empty `sorted` values, bit for bit as numpy's
/// `quantile(values, q)` with its default `linear` method computes it: the virtual index
/// `(n - 1)·q`, then numpy's `_lerp`, which interpolates from the upper neighbour when
/// the fraction is at least one half.
pub fn numpy_quantile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    let virtual_index = (n - 1) as f64 * q;
    let previous = virtual_index.floor();
    if virtual_index >= (n - 1) as f64 {
        return sorted[n - 1];
    }
    if virtual_index < 0.0 {
        return sorted[0];
    }
    let below = previous as usize;
    let (a, b) = (sorted[below], sorted[below + 1]);
    let gamma = virtual_index - previous;
    let difference = b - a;
    if gamma >= 0.5 {
        b - difference * (1.0 - gamma)
    } else {
        a + difference * gamma
    }
}

/// The inner bin edges of a numeric feature: the deciles (0.1 … 0.9) of its reference
/// values, repeated edges dropped. Empty when there are no values.
pub fn decile_edges(values: &mut [f64]) -> Vec<f64> {
    if values.is_empty() {
        return Vec::new();
    }
    values.sort_by(f64::total_cmp);
    let mut edges: Vec<f64> = (1..10)
        .map(|d| numpy_quantile(values, f64::from(d) / 10.0))
        .collect();
    edges.dedup();
    edges
}

/// The bin of a number among inner `edges`: bin `i` holds `(e[i-1], e[i]]`, the last one
/// `(e[k], +inf)`.
pub fn numeric_bin(edges: &[f64], value: f64) -> usize {
    edges.partition_point(|edge| *edge < value)
}

/// `Σ (s − r) · ln(s / r)` over the bins, `s` and `r` the serving and reference shares of
/// the counts, each floored at [`PSI_FLOOR`]. NaN when either side has no rows.
pub fn psi(serving: &[u64], reference: &[u64]) -> f64 {
    let (serving_total, reference_total) = (total(serving), total(reference));
    if serving_total == 0 || reference_total == 0 {
        return f64::NAN;
    }
    serving
        .iter()
        .zip(reference)
        .map(|(&s, &r)| {
            let s = (s as f64 / serving_total as f64).max(PSI_FLOOR);
            let r = (r as f64 / reference_total as f64).max(PSI_FLOOR);
            (s - r) * (s / r).ln()
        })
        .sum()
}

fn total(counts: &[u64]) -> u64 {
    counts.iter().sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_between_neighbours() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(numpy_quantile(&values, 0.0), 1.0);
        assert_eq!(numpy_quantile(&values, 1.0), 4.0);
        assert_eq!(numpy_quantile(&values, 0.5), 2.5);
        // (4 - 1) · 0.1 = 0.3: 1 + 0.3.
        assert!((numpy_quantile(&values, 0.1) - 1.3).abs() < 1e-15);
    }

    #[test]
    fn edges_drop_repeats_and_bins_close_on_the_right() {
        let mut values = vec![0.0; 50];
        values.extend((0..50).map(f64::from));
        let edges = decile_edges(&mut values);
        assert!(edges.windows(2).all(|pair| pair[0] < pair[1]), "{edges:?}");
        assert_eq!(edges[0], 0.0);
        assert_eq!(numeric_bin(&edges, 0.0), 0);
        assert_eq!(numeric_bin(&edges, -5.0), 0);
        assert_eq!(numeric_bin(&edges, 1e9), edges.len());
        assert_eq!(numeric_bin(&[1.0, 2.0], 2.0), 1);
        assert_eq!(numeric_bin(&[1.0, 2.0], 2.0000001), 2);
    }

    #[test]
    fn psi_is_zero_for_equal_shares_and_floors_empty_bins() {
        assert_eq!(psi(&[1, 1, 2], &[10, 10, 20]), 0.0);
        // By hand: (0.3-0.25)ln(1.2) + (0.2-0.25)ln(0.8).
        let by_hand = 0.05 * 1.2f64.ln() - 0.05 * 0.8f64.ln();
        assert!((psi(&[3, 2, 5], &[1, 1, 2]) - by_hand).abs() < 1e-12);
        let floored =
            (1.0 - 0.5) * (1.0f64 / 0.5).ln() + (PSI_FLOOR - 0.5) * (PSI_FLOOR / 0.5).ln();
        assert!((psi(&[4, 0], &[1, 1]) - floored).abs() < 1e-12);
        assert!(psi(&[0, 0], &[1, 1]).is_nan());
    }
}
