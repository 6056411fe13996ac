"""Traffic splits and experiment statistics, as independent Python computes them.

`models/train.py` writes two fixtures with these functions:
- `fixtures/assignment.json`: (customer id, salt, weights) -> arm by the contract's formula,
  written here from its text with `hashlib`, for churnserve's assignment to equal;
- `fixtures/experiment.json`: churn-rate comparisons as statsmodels computes them (the
  pooled two-proportion z-test, the Wald interval of the difference, each rate's Wilson
  interval, and the sample size for 80% power at Cohen's h), and each arm's ROC AUC
  variance by DeLong et al. (1988) computed by brute force over every churner-stayer pair.
churnserve's `churn-metrics` must equal them within 1e-9 (the sample size within 1e-6
relative: statsmodels solves it with a root finder).
"""

import hashlib

import numpy as np
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import (confint_proportions_2indep, proportion_confint,
                                          proportion_effectsize, proportions_ztest)


def arm(salt, customer_id, weights):
    """The contract: h = first 8 bytes of SHA-256(salt + ":" + id), big-endian; b = floor(h*W/2^64);
    the first arm whose running sum of weights exceeds b."""
    h = int.from_bytes(hashlib.sha256(f"{salt}:{customer_id}".encode("utf-8")).digest()[:8], "big")
    b = (h * sum(weights)) >> 64
    running = 0
    for index, weight in enumerate(weights):
        running += weight
        if running > b:
            return index
    raise AssertionError("weights all zero")


def assignment_fixture():
    cases = []
    rng = np.random.default_rng(32)
    splits = [("exp-2026-12", [50, 50]), ("", [1, 1]), ("retention", [90, 10]),
              ("three arms", [1, 2, 3]), ("zero weight", [0, 5, 0, 5]), ("one", [7]),
              ("big", [4_000_000_000, 1, 294_967_295])]
    ids = ["7590-VHVEG", "5575-GNVDE", "", "ö-ünïcödé-客户", "a" * 200, "0", "customer:with:colons"]
    ids += [f"{rng.integers(1000, 9999)}-{''.join(rng.choice(list('ABCDEFGHIJKLMNOPQRSTUVWXYZ'), 5))}"
            for _ in range(60)]
    for salt, weights in splits:
        for customer_id in ids:
            cases.append({"salt": salt, "weights": weights, "customer_id": customer_id,
                          "arm": arm(salt, customer_id, weights)})
    return cases


def delong_variance_brute_force(scores, churned):
    positives, negatives = scores[churned], scores[~churned]
    psi = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    auc = psi.mean()
    return float(auc), float(v10.var(ddof=1) / len(positives) + v01.var(ddof=1) / len(negatives))


def rates_case(baseline, arm_counts):
    (x1, n1), (x2, n2) = baseline, arm_counts
    z, p_value = proportions_ztest([x2, x1], [n2, n1])
    lower, upper = confint_proportions_2indep(x2, n2, x1, n1, method="wald", compare="diff")
    ratio = n2 / n1
    h = proportion_effectsize(x2 / n2, x1 / n1)
    nobs1 = NormalIndPower().solve_power(effect_size=h, nobs1=None, alpha=0.05, power=0.8,
                                         ratio=ratio, alternative="two-sided")
    return {
        "baseline": [x1, n1], "arm": [x2, n2],
        "difference": x2 / n2 - x1 / n1, "p_value": float(p_value),
        "lower": float(lower), "upper": float(upper),
        "baseline_needed": float(nobs1),
        "baseline_wilson": [float(v) for v in proportion_confint(x1, n1, method="wilson")],
        "arm_wilson": [float(v) for v in proportion_confint(x2, n2, method="wilson")],
    }


def experiment_fixture(hold_out_scores, churned):
    rates = [rates_case(b, a) for b, a in [
        ((260, 1000), (230, 1000)), ((26, 100), (31, 120)), ((1500, 5000), (1380, 5000)),
        ((5, 40), (12, 35)), ((400, 1500), (120, 500)), ((1, 3), (2, 3)),
    ]]
    rng = np.random.default_rng(33)
    aucs = []
    for name, scores, labels in [
        ("hold-out logreg", hold_out_scores, churned),
        ("hold-out rounded to 0.1 (ties)", np.round(hold_out_scores, 1), churned),
        ("first 300 rows", hold_out_scores[:300], churned[:300]),
        ("random", rng.random(900), rng.random(900) < 0.3),
    ]:
        auc, variance = delong_variance_brute_force(np.asarray(scores, float), np.asarray(labels, bool))
        aucs.append({"name": name, "scores": [float(s) for s in scores],
                     "churned": [bool(c) for c in labels], "roc_auc": auc, "variance": variance})
    return {"rates": rates, "aucs": aucs}
