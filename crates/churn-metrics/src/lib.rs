//! Metrics of churn scores against known outcomes. Pure functions over plain slices, so
//! the server, the CLI and the explainers compute them the same way.

/// Area under the ROC curve; tied scores count half, as scikit-learn's `roc_auc_score`
/// does. `None` when the labels hold only one class.
pub fn roc_auc(scores: &[f64], churned: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), churned.len(), "one label per score");
    let positives = churned.iter().filter(|&&c| c).count();
    let negatives = churned.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_unstable_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Mann-Whitney: the rank sum of the positives, with tied scores sharing their mean rank.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mean_rank = (start + end + 1) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| churned[i]).count();
        positive_rank_sum += mean_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_auc_matches_hand_counted_pairs() {
        // Pairs (positive, negative): 0.8>0.1, 0.8>0.4, 0.35<0.4, 0.35>0.1 -> 3 of 4.
        let auc = roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]);
        assert_eq!(auc, Some(0.75));
        // A tie between a positive and a negative counts half: (1 + 0.5) / 2.
        let tied = roc_auc(&[0.5, 0.5, 0.9], &[false, true, true]);
        assert_eq!(tied, Some(0.75));
        assert_eq!(roc_auc(&[0.2, 0.3], &[true, true]), None);
    }

    #[test]
    fn reversing_the_scores_mirrors_the_auc() {
        let scores = [0.3, 0.1, 0.7, 0.7, 0.2, 0.9, 0.4];
        let churned = [false, false, true, false, true, true, false];
        let reversed: Vec<f64> = scores.iter().map(|s| -s).collect();
        let auc = roc_auc(&scores, &churned).expect("both classes");
        let mirrored = roc_auc(&reversed, &churned).expect("both classes");
        assert!((auc + mirrored - 1.0).abs() < 1e-12, "{auc} + {mirrored}");
    }
}
