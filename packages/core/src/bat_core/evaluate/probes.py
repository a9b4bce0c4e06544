"""Can labels be read from a representation? Linear probes and clustering, with their spread."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, normalized_mutual_info_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

MAX_FOLDS = 5


@dataclass
class ProbeResult:
    probe_accuracy: float = float("nan")
    probe_accuracy_std: float = float("nan")
    probe_macro_f1: float = float("nan")
    probe_macro_f1_std: float = float("nan")
    nmi: float = float("nan")
    purity: float = float("nan")
    folds: int = 0
    files: int = 0
    classes: int = 0
    notes: list[str] = field(default_factory=list)


def bag_of_tokens(tokens: np.ndarray, codebook_size: int, bigrams: bool = True) -> np.ndarray:
    """Normalised unigram counts, plus bigram counts along time (row-major ravel order)."""
    flat = tokens.ravel().astype(np.int64)
    unigrams = np.bincount(flat, minlength=codebook_size).astype(np.float64)
    parts = [unigrams / max(unigrams.sum(), 1)]
    if bigrams:
        pairs = flat[:-1] * codebook_size + flat[1:] if len(flat) > 1 else np.zeros(0, dtype=np.int64)
        counts = np.bincount(pairs, minlength=codebook_size * codebook_size).astype(np.float64)
        parts.append(counts / max(counts.sum(), 1))
    return np.concatenate(parts)


def purity(labels: np.ndarray, clusters: np.ndarray) -> float:
    """Share of files whose cluster's majority label is their own."""
    total = 0
    for cluster in np.unique(clusters):
        total += Counter(labels[clusters == cluster]).most_common(1)[0][1]
    return total / len(labels)


def usable_rows(labels: list[str]) -> tuple[np.ndarray, list[str]]:
    """Rows with a label whose class has at least two members (a class of one cannot be tested)."""
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


def probe(vectors: np.ndarray, labels: list[str], groups: list[str] | None = None, seed: int = 0,
          predict_majority: bool = False) -> ProbeResult:
    """Grouped, stratified k-fold logistic regression (or the majority class) + k-means NMI/purity."""
    keep, notes = usable_rows(labels)
    X = np.asarray(vectors, dtype=np.float64)[keep]
    y = np.asarray(labels)[keep]
    g = np.asarray(groups)[keep] if groups is not None else None
    result = ProbeResult(files=len(y), classes=len(set(y)), notes=notes)
    if result.classes < 2:
        result.notes.append("fewer than two classes with two or more files: no probe")
        return result
    smallest = min(Counter(y).values())
    n_splits = min(MAX_FOLDS, smallest, len(set(g)) if g is not None else smallest)
    if n_splits < 2:
        result.notes.append("too few files (or groups) per class for two folds: no probe")
        return result
    accuracies, f1s = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence / ill-defined-metric warnings on tiny folds
        for train, test in folds(y, g, n_splits, seed):
            if predict_majority:
                majority = Counter(y[train]).most_common(1)[0][0]
                predicted = np.full(len(test), majority)
            else:
                model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
                model.fit(X[train], y[train])
                predicted = model.predict(X[test])
            accuracies.append(accuracy_score(y[test], predicted))
            f1s.append(f1_score(y[test], predicted, average="macro"))
        result.folds = len(accuracies)
        result.probe_accuracy, result.probe_accuracy_std = float(np.mean(accuracies)), float(np.std(accuracies))
        result.probe_macro_f1, result.probe_macro_f1_std = float(np.mean(f1s)), float(np.std(f1s))
        if predict_majority:
            clusters = np.zeros(len(y), dtype=int)
        else:
            clusters = KMeans(result.classes, n_init=10, random_state=seed).fit_predict(StandardScaler().fit_transform(X))
    result.nmi = float(normalized_mutual_info_score(y, clusters))
    result.purity = float(purity(y, clusters))
    return result
