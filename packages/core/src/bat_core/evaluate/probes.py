"""Can labels be read from a representation? Linear probes and clustering, with their spread."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bat_core.evaluate.features import BlockScaler

MAX_FOLDS = 5
CLUSTER_SEEDS = 5  # k-means restarts from different seeds: NMI and purity are reported with their spread
MISSING_LABELS = {"", "nan", "na", "n/a", "none", "null"}  # spellings of "no label" (compared lower-cased)
UNLABELLED = ""


@dataclass
class ProbeResult:
    probe_accuracy: float = float("nan")
    probe_accuracy_std: float = float("nan")
    probe_macro_f1: float = float("nan")
    probe_macro_f1_std: float = float("nan")
    nmi: float = float("nan")
    nmi_std: float = float("nan")
    purity: float = float("nan")
    purity_std: float = float("nan")
    folds: int = 0
    files: int = 0
    classes: int = 0
    class_counts: dict[str, int] = field(default_factory=dict)
    chance_accuracy: float = float("nan")  # share of the largest class: what always guessing it scores
    probe_defined: bool = False
    confounded_classes: list[str] = field(default_factory=list)  # classes held by one group: no grouped probe
    confusion_classes: list[str] = field(default_factory=list)  # rows and columns of ``confusion``, in order
    confusion: list[list[int]] = field(default_factory=list)  # true class (row) x predicted (column), test folds summed
    notes: list[str] = field(default_factory=list)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of files whose cluster's majority label is their own."""
    total = 0
    for cluster in np.unique(clusters):
        total += Counter(labels[clusters == cluster]).most_common(1)[0][1]
    return total / len(labels)


def clean_label(value: str) -> str:
    """``NaN``, ``nan``, ``NA``, empty...: one unlabelled set (``""``), never classes of their own."""
    text = str(value).strip()
    return UNLABELLED if text.lower() in MISSING_LABELS else text


def usable_rows(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Rows with a label whose class has at least two members (a class of one cannot be tested)."""
    labels = [clean_label(label) for label in labels]
    counts = Counter(label for label in labels if label)
    keep = np.array([bool(label) and counts[label] >= 2 for label in labels])
    notes = []
    if (~keep).any():
        dropped = sorted({label for label, k in zip(labels, keep) if label and not k})
        unlabelled = sum(1 for label in labels if not label)
        notes.append(f"left out {int((~keep).sum())} files: {unlabelled} unlabelled"
                     + (f", classes with one file: {dropped}" if dropped else ""))
    return keep, notes


def folds(labels: np.ndarray, groups: np.ndarray | None, n_splits: int, seed: int = 0):
    """Stratified folds; with groups, no group is ever on both sides of a split."""
    if groups is not None:
        return StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(labels, labels, groups)
    return StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(labels, labels)


def probe(vectors, labels: list[str], groups: list[str] | None = None, seed: int = 0,
          predict_majority: bool = False, standardise: bool = True,
          blocks: list[tuple[int, int, float]] | None = None) -> ProbeResult:
    """Stratified k-fold logistic regression (or the majority class), grouped when ``groups`` is given,
    + k-means NMI/purity over ``CLUSTER_SEEDS`` seeds. ``vectors``: dense or scipy.sparse rows;
    ``standardise=False`` for token bags: scaled without centring (rows stay sparse), block by block
    (``blocks``: ``TokenFeatures.blocks``; default one block), so n-gram columns never bury the unigrams."""
    keep, notes = usable_rows(labels)
    X = vectors.tocsr()[np.flatnonzero(keep)] if sp.issparse(vectors) else np.asarray(vectors, dtype=np.float64)[keep]
    y = np.asarray([clean_label(label) for label in labels])[keep]
    g = np.asarray(groups)[keep] if groups is not None else None
    counts = Counter(y.tolist())
    result = ProbeResult(files=len(y), classes=len(counts), notes=notes, class_counts=dict(sorted(counts.items())),
                         chance_accuracy=max(counts.values()) / len(y) if len(y) else float("nan"))
    if result.classes < 2:
        result.notes.append("fewer than two classes with two or more files: no probe")
        return result
    n_splits = min(MAX_FOLDS, min(counts.values()))
    if g is not None:
        groups_per_class = {label: len(set(g[y == label])) for label in counts}
        confounded = sorted(label for label, n in groups_per_class.items() if n < 2)
        if confounded:
            result.confounded_classes = confounded
            result.notes.append(f"classes {confounded} have fewer than two groups: a probe would measure the group "
                                "(recording, site), not the label; grouped probe undefined, no ranking")
            return result
        n_splits = min(n_splits, min(groups_per_class.values()))
    if n_splits < 2:
        result.notes.append("too few files per class for two folds: no probe")
        return result
    accuracies, f1s = [], []
    truth, predictions = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / ill-defined-metric warnings on tiny folds
        for train, test in folds(y, g, n_splits, seed):
            if predict_majority:
                majority = Counter(y[train]).most_common(1)[0][0]
                predicted = np.full(len(test), majority)
            else:
                model = _model(standardise, blocks or [(0, X.shape[1], 1.0)])
                model.fit(X[train], y[train])
                predicted = model.predict(X[test])
            truth.append(y[test])
            predictions.append(predicted)
            accuracies.append(accuracy_score(y[test], predicted))
            f1s.append(f1_score(y[test], predicted, average="macro"))
        result.folds = len(accuracies)
        result.confusion_classes = sorted(counts)
        result.confusion = confusion_matrix(np.concatenate(truth), np.concatenate(predictions),
                                            labels=result.confusion_classes).tolist()
        result.probe_defined = True
        result.probe_accuracy, result.probe_accuracy_std = float(np.mean(accuracies)), float(np.std(accuracies))
        result.probe_macro_f1, result.probe_macro_f1_std = float(np.mean(f1s)), float(np.std(f1s))
        if predict_majority:
            clusterings = [np.zeros(len(y), dtype=int)]
        else:
            points = StandardScaler(with_mean=not sp.issparse(X)).fit_transform(X) if standardise else X
            clusterings = [KMeans(result.classes, n_init=1, random_state=seed + s).fit_predict(points)
                           for s in range(CLUSTER_SEEDS)]
    nmis = [normalized_mutual_info_score(y, c) for c in clusterings]
    purities = [purity(y, c) for c in clusterings]
    result.nmi, result.nmi_std = float(np.mean(nmis)), float(np.std(nmis))
    result.purity, result.purity_std = float(np.mean(purities)), float(np.std(purities))
    return result


def _model(standardise: bool, blocks: list[tuple[int, int, float]]):
    """Standardised vectors, or token bags scaled block-wise; the default regularisation either way. Token bags are
    wide (K + 4096 per n-gram order): Newton-CG reaches the same optimum there 6x faster than L-BFGS (measured:
    0.7 s vs 4.1 s for one K=256 bigram fit of 24 files)."""
    if standardise:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return make_pipeline(BlockScaler(blocks), LogisticRegression(max_iter=2000, solver="newton-cg"))
