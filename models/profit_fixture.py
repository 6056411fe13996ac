"""The profit of a retention campaign, as the two Python references compute it.

`models/train.py` writes `fixtures/profit.json` with `profit_fixture`: per case, a set of
scores and labels, the campaign's parameters, and what PyPI `EMP-PY`'s `empChurn`
(EMP, EMP_fraction, MP, MP_fraction) and `empulse`'s `empc_score` make of them. churnserve's
`Metrics.profit` must equal them within 1e-9.
"""

import warnings

import numpy as np
from EMP.metrics import empChurn
from empulse.metrics import empc_score

# (name, clv, incentive_cost, contact_cost, acceptance_alpha, acceptance_beta)
CAMPAIGNS = {
    "defaults": (200.0, 10.0, 1.0, 6.0, 14.0),
    "valuable customers, costly offer": (500.0, 50.0, 5.0, 10.0, 5.0),
    "cheap contact, reluctant churners": (100.0, 5.0, 0.5, 2.0, 18.0),
    "uniform acceptance": (50.0, 20.0, 2.0, 1.0, 1.0),
    "no campaign pays": (30.0, 25.0, 4.0, 1.0, 9.0),
}


def profit(scores, churned, campaign):
    clv, incentive, contact, alpha, beta = CAMPAIGNS[campaign]
    with warnings.catch_warnings():
        # empChurn divides by zero on a flat hull segment, as intended: that rate is dropped.
        warnings.simplefilter("ignore", RuntimeWarning)
        emp = empChurn(scores, churned.astype(int), alpha=alpha, beta=beta, clv=clv, d=incentive, f=contact)
    empulse = empc_score(churned.astype(int), scores, alpha=alpha, beta=beta, clv=clv,
                         incentive_cost=incentive, contact_cost=contact)
    assert abs(float(emp.EMP) - float(empulse)) <= 1e-9, (campaign, emp.EMP, empulse)
    return {
        "empc": float(emp.EMP), "empc_fraction": float(emp.EMP_fraction),
        "mpc": float(emp.MP), "mpc_fraction": float(emp.MP_fraction),
        "empulse_empc": float(empulse),
    }


def profit_fixture(churned, hold_out):
    """`hold_out`: name -> the hold-out probabilities of a model, as onnxruntime computes them."""
    rng = np.random.default_rng(31)
    many = rng.random(6000)
    score_sets = {
        "telco-logreg hold-out": (hold_out["telco-logreg"], churned),
        "telco-lgbm hold-out": (hold_out["telco-lgbm"], churned),
        "telco-forest hold-out: a forest's many tied scores": (hold_out["telco-forest"], churned),
        "ties: telco-logreg rounded to one decimal": (np.round(hold_out["telco-logreg"], 1), churned),
        "many distinct scores": (many, rng.random(6000) < many),
    }
    cases = [
        ("telco-logreg hold-out", list(CAMPAIGNS)),
        ("telco-lgbm hold-out", ["defaults", "valuable customers, costly offer"]),
        ("telco-forest hold-out: a forest's many tied scores", ["defaults", "cheap contact, reluctant churners"]),
        ("ties: telco-logreg rounded to one decimal", ["defaults", "uniform acceptance"]),
        ("many distinct scores", ["defaults"]),
    ]
    return {
        "source": "models/profit_fixture.py: EMP-PY's empChurn and empulse's empc_score",
        "campaigns": {name: dict(zip(["clv", "incentive_cost", "contact_cost", "acceptance_alpha",
                                      "acceptance_beta"], values)) for name, values in CAMPAIGNS.items()},
        "score_sets": {name: {"scores": [float(v) for v in scores], "churned": [bool(v) for v in labels]}
                       for name, (scores, labels) in score_sets.items()},
        "cases": [{"name": f"{scores} / {campaign}", "score_set": scores, "campaign": campaign,
                   "expected": profit(*score_sets[scores], campaign)}
                  for scores, campaigns in cases for campaign in campaigns],
    }
