"""Intent classifier: logistic regression on sentence vectors, calibrated, with an out-of-scope rule.

Confidences are calibrated by temperature scaling on held-out (or out-of-fold)
predictions. A text falls back to `nlu_fallback` when its calibrated confidence
is low or when it is far from every in-scope training example (mean cosine
similarity to its nearest neighbours): gibberish and unseen topics often get a
confident softmax but never have close neighbours. Both thresholds are chosen
together on the held-out predictions, trading right in-scope answers against
caught out-of-scope examples (`oos_weight`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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
    # Threshold on the calibrated confidence (Rasa's FallbackClassifier default); None: choose on held-out data.
    fallback_threshold: float | None = 0.3
    # Weight of a wrongly accepted out-of-scope example against a wrongly rejected in-scope one.
    oos_weight: float = 1.0
    # Nearest in-scope training examples averaged for the similarity score.
    neighbours: int = 3
    # Share of held-out in-scope examples the similarity rule rejects at least (see choose_thresholds).
    novelty_rate: float = 0.01
    seed: int = 0


@dataclass
class IntentClassifier:
    """A fitted classifier: weights, classes, temperature, in-scope vectors and the two thresholds."""

    classes: list[str]
    coef: npt.NDArray[np.float64]
    intercept: npt.NDArray[np.float64]
    temperature: float
    threshold: float  # on the calibrated confidence
    support: Vectors = field(default_factory=lambda: np.zeros((0, 0), dtype=np.float32))
    similarity_threshold: float = -1.0  # on the mean cosine similarity to the nearest in-scope examples
    neighbours: int = 3

    def logits(self, x: Vectors) -> npt.NDArray[np.float64]:
        return np.asarray(x, dtype=np.float64) @ self.coef.T + self.intercept

    def predict_proba(self, x: Vectors) -> npt.NDArray[np.float64]:
        return _softmax(self.logits(x) / self.temperature)

    def similarity(self, x: Vectors) -> npt.NDArray[np.float64]:
        """Mean cosine similarity of each row to its nearest in-scope training examples."""
        x = np.asarray(x, dtype=np.float32)
        if len(x) == 1 and len(self.support):
            # One row (a parse) stays on one core in numpy's own loop: BLAS splits this memory-bound
            # product over its threads, and on a busy machine waiting for the second one cost up to
            # 9 ms at the 95th percentile (15k CLINC150 neighbours), ten times the work itself.
            return _knn_similarity(np.einsum("ij,kj->ik", x, self.support), self.neighbours)
        return _knn_similarity(x @ self.support.T, self.neighbours)

    def accepts(self, probs: npt.NDArray[np.float64], similarity: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
        """Which predictions stand; the others become `nlu_fallback` (`out_of_scope` always stands)."""
        oos = np.array(self.classes)[probs.argmax(1)] == OUT_OF_SCOPE
        confident = probs.max(1) >= self.threshold
        kept: npt.NDArray[np.bool_] = oos | (confident & (similarity >= self.similarity_threshold))
        return kept

    def to_arrays(self) -> dict[str, npt.NDArray[np.generic]]:
        return {
            "coef": self.coef,
            "intercept": self.intercept,
            "classes": np.array(self.classes),
            "calibration": np.array([self.temperature, self.threshold, self.similarity_threshold, self.neighbours]),
            "support": self.support,
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, npt.NDArray[np.generic]]) -> IntentClassifier:
        calibration = [float(v) for v in arrays["calibration"]]
        temperature, threshold, similarity_threshold, neighbours = [*calibration, -1.0, 3.0][:4]
        support = arrays.get("support", np.zeros((0, 0)))
        return cls(
            classes=[str(c) for c in arrays["classes"]],
            coef=np.asarray(arrays["coef"], dtype=np.float64),
            intercept=np.asarray(arrays["intercept"], dtype=np.float64),
            temperature=temperature,
            threshold=threshold,
            support=np.asarray(support, dtype=np.float32),
            similarity_threshold=similarity_threshold,
            neighbours=int(neighbours),
        )


def _knn_similarity(sims: npt.NDArray[np.floating[Any]], k: int) -> npt.NDArray[np.float64]:
    """Row-wise mean of the k largest similarities (1.0 when there is nothing to compare with)."""
    if sims.shape[1] == 0:
        return np.ones(sims.shape[0])
    k = min(k, sims.shape[1])
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return np.asarray(top.mean(1), dtype=np.float64)


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


# Thresholds are searched among these quantiles of the held-out in-scope scores:
# neither rule alone may reject more than a fifth of the in-scope examples.
_QUANTILES = np.linspace(0.0, 0.2, 41)


def choose_thresholds(
    confidence: npt.NDArray[np.float64],
    similarity: npt.NDArray[np.float64],
    correct: npt.NDArray[np.bool_],
    is_oos: npt.NDArray[np.bool_],
    caught: npt.NDArray[np.bool_],
    *,
    oos_weight: float = 1.0,
    novelty_rate: float = 0.0,
    fixed_confidence: float | None = None,
) -> tuple[float, float]:
    """(confidence, similarity) thresholds maximising right answers over the held-out examples.

    `correct`: in-scope examples predicted right, which count when kept; each
    out-of-scope example counts `oos_weight` when rejected or already `caught`
    by the `out_of_scope` class. The similarity threshold rejects at least the
    `novelty_rate` least familiar in-scope examples: held-out data rarely holds
    the gibberish and unheard-of topics that this rule is there to catch. With
    `fixed_confidence`, only the similarity threshold is searched.
    """
    in_scope = ~is_oos
    if not in_scope.any():
        return 0.0, -1.0
    if fixed_confidence is None:
        conf_grid = np.unique(np.concatenate([[0.0], np.quantile(confidence[in_scope], _QUANTILES)]))
    else:
        conf_grid = np.array([fixed_confidence])
    sim_grid = np.unique(np.quantile(similarity[in_scope], np.linspace(novelty_rate, _QUANTILES[-1], len(_QUANTILES))))
    # kept[i, j, n]: example n passes confidence threshold i and similarity threshold j.
    kept = (confidence[None, None, :] >= conf_grid[:, None, None]) & (
        similarity[None, None, :] >= sim_grid[None, :, None]
    )
    right = (kept & (correct & in_scope)).sum(-1) + oos_weight * ((~kept | caught) & is_oos).sum(-1)
    # Ties go to the lowest thresholds (first in the grid): reject no more than needed.
    i, j = np.unravel_index(int(np.argmax(right)), right.shape)
    return float(conf_grid[i]), float(sim_grid[j])


def train_classifier(
    x: Vectors,
    y: list[str],
    config: ClassifierConfig,
    *,
    held_out: tuple[Vectors, list[str]] | None = None,
    fold_in_held_out: bool = False,
) -> IntentClassifier:
    """Fit on (x, y); calibrate and pick the thresholds on `held_out` or on out-of-fold predictions.

    Labels equal to `out_of_scope` train an explicit class; a held-out set may also
    contain `out_of_scope` examples that only tune the thresholds. With
    `fold_in_held_out`, the final model is refitted on (x, y) plus the held-out
    examples, keeping the calibration found on them.
    """
    clf = _classifier(x, y, config)
    if held_out is not None:
        hx, hy = held_out
        logits = clf.logits(hx)
        similarity = clf.similarity(hx)
    else:
        hx, hy = x, y
        logits = _out_of_fold_logits(x, y, clf.classes, config)
        # Leave-one-out: an example is not its own neighbour.
        sims = x @ x.T
        np.fill_diagonal(sims, -np.inf)
        similarity = _knn_similarity(sims[:, np.array(y) != OUT_OF_SCOPE], config.neighbours)
    classes = clf.classes
    labels = np.array(hy)
    known = np.isin(labels, classes)
    truth = np.array([classes.index(v) if v in classes else 0 for v in hy])
    if known.any() and np.abs(logits).sum() > 0:
        clf.temperature = fit_temperature(logits[known], truth[known])
    if np.abs(logits).sum() > 0:
        probs = _softmax(logits / clf.temperature)
        predicted = np.array(classes)[probs.argmax(1)]
        is_oos = labels == OUT_OF_SCOPE
        correct = (predicted == labels) & ~is_oos
        caught = is_oos & (predicted == OUT_OF_SCOPE)
        clf.threshold, clf.similarity_threshold = choose_thresholds(
            probs.max(1), similarity, correct, is_oos, caught, oos_weight=config.oos_weight,
            novelty_rate=config.novelty_rate, fixed_confidence=config.fallback_threshold,
        )
    elif config.fallback_threshold is not None:
        clf.threshold = config.fallback_threshold
    if held_out is not None and fold_in_held_out:
        final = _classifier(np.vstack([x, held_out[0]]), [*y, *held_out[1]], config)
        final.temperature, final.threshold = clf.temperature, clf.threshold
        final.similarity_threshold = clf.similarity_threshold
        return final
    return clf


def _classifier(x: Vectors, y: list[str], config: ClassifierConfig) -> IntentClassifier:
    """Logistic regression on (x, y) with in-scope support vectors; uncalibrated, no thresholds."""
    model = _fit(x, y, config)
    classes = [str(c) for c in model.classes_]
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if coef.shape[0] == 1:  # binary problems come back as one row
        coef = np.vstack([-coef[0], coef[0]]) / 2
        intercept = np.array([-intercept[0], intercept[0]]) / 2
    support = np.asarray(x[np.array(y) != OUT_OF_SCOPE], dtype=np.float32)
    return IntentClassifier(
        classes, coef, intercept, temperature=1.0, threshold=0.0, support=support, neighbours=config.neighbours
    )
