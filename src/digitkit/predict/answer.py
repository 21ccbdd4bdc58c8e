"""What a model reads in one image of a digit: the typed answer every reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digitkit.classifier import not_a_class_message, verdict


@dataclass
class Answer:
    """What a model reads in one image. ``label`` is None when the image has no ink (``message`` says
    so); ``verdict`` is "sure", "not sure" or "not a class" (``message``: "That doesn't look like a
    digit"); ``input`` is the 28×28 image the model saw (uint8, white on black)."""

    label: str | None
    confidence: float = 0.0
    verdict: str | None = None
    top: list[tuple[str, float]] = field(default_factory=list)
    probabilities: dict[str, float] | None = None
    input: np.ndarray | None = None
    message: str | None = None

    @classmethod
    def of(cls, probs: np.ndarray, labels: list[str], top: int = 2, seen: np.ndarray | None = None) -> Answer:
        order = np.argsort(-probs, kind="stable")
        confidence = float(probs[order[0]])
        said = verdict(confidence)
        return cls(label=labels[order[0]], confidence=confidence, verdict=said,
                   top=[(labels[i], float(probs[i])) for i in order[:top]],
                   probabilities={c: float(p) for c, p in zip(labels, probs)}, input=seen,
                   message=not_a_class_message(labels) if said == "not a class" else None)

    @classmethod
    def blank(cls, why: str) -> Answer:
        return cls(label=None, message=why)

    @property
    def sure(self) -> bool:
        return self.verdict == "sure"

    def summary(self) -> dict:
        """The answer as JSON: label, confidence, verdict, probabilities and the top classes."""
        return {"label": self.label, "confidence": self.confidence, "verdict": self.verdict,
                "probabilities": self.probabilities, "top": [list(pair) for pair in self.top]}
