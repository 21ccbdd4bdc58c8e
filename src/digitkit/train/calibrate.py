"""Temperature scaling (Guo et al., 2017): one number T, fitted on the validation split, so that
softmax(logits / T) gives probabilities that match how often the model is right. It changes no
prediction, only how sure each one is; the model stores it by scaling its last layer."""

from __future__ import annotations

import math

import numpy as np


def _nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    tempered = apply_temperature(probs, temperature, np.float64)
    if tempered.ndim == 3:  # a model that averages several answers per image: the average's NLL
        tempered = tempered.mean(axis=0)
    return float(-np.log(np.clip(tempered[np.arange(len(labels)), labels], 1e-300, 1)).mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of ``labels`` under
    softmax(log(probs) / T). ``probs`` is (N, classes), or (S, N, classes) for a model that answers
    with the average of S tempered answers (shift averaging): T is then fitted to that average."""
    probs = np.asarray(probs, np.float64)
    labels = np.asarray(labels, np.int64)
    return math.exp(_golden_minimum(lambda log_t: _nll(probs, labels, math.exp(log_t)), math.log(0.05), math.log(20)))


def _golden_minimum(f, lo: float, hi: float, tolerance: float = 1e-5) -> float:
    """The x in [lo, hi] where the unimodal f is least, by golden-section search. What
    scipy.optimize.minimize_scalar does, without its 0.45 s import in every training run."""
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = f(a), f(b)
    while hi - lo > tolerance:
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = f(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = f(b)
    return (lo + hi) / 2


def apply_temperature(probs: np.ndarray, temperature: float, dtype=np.float32) -> np.ndarray:
    """softmax(log(probs) / T) over the last axis."""
    logits = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=-1, keepdims=True)).astype(dtype)
