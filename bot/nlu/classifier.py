"""Intent classifier: logistic regression on sentence vectors, calibrated, with a fallback threshold.

Confidences are calibrated by temperature scaling on out-of-fold predictions, and
the `nlu_fallback` threshold is chosen on the same held-out predictions: the
threshold that best separates correct in-scope answers from `out_of_scope`
examples and from mistakes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

Vectors = npt.NDArray[np.float32]
OUT_OF_SCOPE = "out_of_scope"
FALLBACK = "nlu_fallback"


@dataclass(frozen=True)
class ClassifierConfig:
    c: float = 0.2
    max_iter: int = 3000
    tol: float = 1e-3
    folds: int = 3
    # Fixed threshold; None means "choose on held-out predictions".
    fallback_threshold: float | None = None
    # Weight of a wrongly accepted out-of-scope example against a wrongly rejected in-scope one.
    oos_weight: float = 1.0
    seed: int = 0


@dataclass
class IntentClassifier:
    """A fitted classifier: weights, classes, temperature and threshold."""

    classes: list[str]
    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    temperature: float
    threshold: float

    def logits(self, x: Vectors) -> npt.NDArray[np.float64]:
        return np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept

    def predict_proba(self, x: Vectors) -> npt.NDArray[np.float64]:
        return _softmax(self.logits(x) / self.temperature)

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "coef": self.coef,
            "intercept": self.intercept,
            "classes": np.array(self.classes),
            "calibration": np.array([self.temperature, self.threshold]),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> IntentClassifier:
        temperature, threshold = (float(v) for v in arrays["calibration"])
        return cls(
            classes=[str(c) for c in arrays["classes"]],
            coef=np.asarray(arrays["coef"], dtype=np.float64),
            intercept=np.asarray(arrays["intercept"], dtype=np.float64),
            temperature=temperature,
            threshold=threshold,
        )


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return out


def _fit(x: Vectors, y: list[str], config: ClassifierConfig) -> LogisticRegression:
    # Unit vectors have tiny components; scaling them to unit variance per
    # dimension makes the solver converge in a few iterations.
    scale = np.sqrt(x.shape[1])
    model = LogisticRegression(C=config.c, max_iter=config.max_iter, tol=config.tol, random_state=config.seed)
    model.fit(x * scale, y)
    model.coef_ = model.coef_ * scale
    return model


def _out_of_fold_logits(
    x: Vectors, y: list[str], classes: list[str], config: ClassifierConfig
) -> npt.NDArray[np.float64]:
    counts = np.unique(np.array(y), return_counts=True)[1]
    folds = int(min(config.folds, counts.min()))
    out = np.zeros((len(y), len(classes)))
    if folds < 2:
        return out
    labels = np.array(y)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=config.seed)
    for train_idx, test_idx in splitter.split(x, labels):
        model = _fit(x[train_idx], list(labels[train_idx]), config)
        logits = model.decision_function(x[test_idx])
        if logits.ndim == 1:  # two classes: one score, positive for classes_[1]
            logits = np.stack([-logits / 2, logits / 2], axis=1)
        # Columns follow the fold model's classes; map them onto the full list.
        full = np.full((len(test_idx), len(classes)), -1e9)
        for j, name in enumerate(model.classes_):
            full[:, classes.index(str(name))] = logits[:, j]
        out[test_idx] = full
    return out


def fit_temperature(logits: npt.NDArray[np.float64], truth: npt.NDArray[np.int64]) -> float:
    """Temperature minimising the negative log-likelihood of held-out predictions."""

    def nll(t: float) -> float:
        p = _softmax(logits / t)
        return float(-np.log(np.clip(p[np.arange(len(truth)), truth], 1e-12, None)).mean())

    result = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded")
    return float(result.x)


def choose_threshold(
    confidence: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    is_oos: npt.NDArray[np.bool_],
    caught: npt.NDArray[np.bool_],
    *,
    oos_weight: float = 1.0,
) -> float:
    """Threshold maximising right answers over the held-out examples.

    `correct`: in-scope examples predicted right; `caught`: out-of-scope examples
    already predicted as `out_of_scope` (right whatever the threshold). Each
    out-of-scope example weighs `oos_weight` in-scope examples.
    """
    best_t, best_score = 0.0, -1.0
    in_scope = ~is_oos
    for t in np.unique(np.concatenate([[0.0], confidence])):
        kept = confidence >= t
        rejected_oos = is_oos & (caught | ~kept)
        score = (correct & kept & in_scope).sum() + oos_weight * rejected_oos.sum()
        if score > best_score + 1e-12:
            best_t, best_score = float(t), float(score)
    return best_t


def train_classifier(
    x: Vectors,
    y: list[str],
    config: ClassifierConfig,
    *,
    held_out: tuple[Vectors, list[str]] | None = None,
) -> IntentClassifier:
    """Fit on (x, y); calibrate and pick the threshold on `held_out` or on out-of-fold predictions.

    Labels equal to `out_of_scope` train an explicit class; a held-out set may also
    contain `out_of_scope` examples that only tune the threshold.
    """
    model = _fit(x, y, config)
    classes = [str(c) for c in model.classes_]
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary problems come back as one row
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    clf = IntentClassifier(classes, coef, intercept, temperature=1.0, threshold=0.0)

    if held_out is not None:
        hx, hy = held_out
        logits = clf.logits(hx)
    else:
        hx, hy = x, y
        logits = _out_of_fold_logits(x, y, classes, config)
    labels = np.array(hy)
    known = np.isin(labels, classes)
    truth = np.array([classes.index(v) if v in classes else 0 for v in hy])
    if known.any() and np.abs(logits).sum() > 0:
        clf.temperature = fit_temperature(logits[known], truth[known])
    if config.fallback_threshold is not None:
        clf.threshold = config.fallback_threshold
    elif np.abs(logits).sum() > 0:
        probs = _softmax(logits / clf.temperature)
        predicted = np.array(classes)[probs.argmax(1)]
        is_oos = labels == OUT_OF_SCOPE
        correct = (predicted == labels) & ~is_oos
        caught = is_oos & (predicted == OUT_OF_SCOPE)
        clf.threshold = choose_threshold(probs.max(1), correct, is_oos, caught, oos_weight=config.oos_weight)
    return clf
