"""Calibrated confidences: temperature scaling fitted on the validation split.

Why: the reply policy compares probabilities with thresholds ("reply when needs-reply is at least
0.9"); a threshold only means what it says when, among tweets scored 0.9, about 90% are right.
Neural networks are usually over-confident; one temperature per task and model (Guo et al. 2017,
"On Calibration of Modern Neural Networks") fixes most of it without changing any prediction.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from replyflow.nlp.models import calibrate


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T in [0.05, 20] that minimises the negative log-likelihood of ``labels``
    under softmax(log p / T); rows with label < 0 (unknown) are ignored."""
    known = labels >= 0
    probs, labels = probs[known], labels[known]
    if len(labels) == 0:
        return 1.0

    def nll(t: float) -> float:
        p = calibrate(probs, t)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(labels)), labels], 1e-12, 1.0))))

    result = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded", options={"xatol": 1e-4})
    return round(float(result.x), 4)


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> dict[str, list[float] | float]:
    """Confidence vs accuracy per confidence bin, and the expected calibration error (ECE)."""
    known = labels >= 0
    probs, labels = probs[known], labels[known]
    conf = probs.max(axis=1)
    right = (probs.argmax(axis=1) == labels).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    out: dict[str, list[float] | float] = {"confidence": [], "accuracy": [], "count": []}
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if not sel.any():
            continue
        out["confidence"].append(round(float(conf[sel].mean()), 4))  # type: ignore[union-attr]
        out["accuracy"].append(round(float(right[sel].mean()), 4))  # type: ignore[union-attr]
        out["count"].append(int(sel.sum()))  # type: ignore[union-attr]
        ece += sel.mean() * abs(conf[sel].mean() - right[sel].mean())
    out["ece"] = round(float(ece), 4)
    return out
