"""Temperature scaling (Guo et al., 2017): one number T, fitted on the validation split, so that
softmax(logits / T) gives probabilities that match how often the model is right. It changes no
prediction, only how sure each one is; the model stores it by scaling its last layer."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def _nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    logits = np.log(np.clip(probs, 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    log_z = np.log(np.exp(logits).sum(axis=1))
    return float((log_z - logits[np.arange(len(labels)), labels]).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of ``labels`` under
    softmax(log(probs) / T)."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    result = minimize_scalar(lambda log_t: _nll(probs, labels, np.exp(log_t)), bounds=(np.log(0.05), np.log(20)),
                             method="bounded")
    return float(np.exp(result.x))


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)
