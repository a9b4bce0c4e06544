"""The issue's acceptance check: on the demo corpus every probe accuracy in the report is within 0.05 of an
independent probe written here with scikit-learn alone (logistic regression on L1-normalised unigram bags or
on raw vectors, folds grouped by site), per file and per call."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bat_core.dataset import Dataset
from bat_core.evaluate import evaluate_project
from bat_core.evaluate.baselines import MFCC_CODES, mfcc, mfcc_kmeans_tokens
from bat_core.mels import MelConfig, compute_mels
from bat_core.runner import RunOptions
from bat_core.store import RepresentationStore, read_manifest

QUIET = RunOptions(workers=0, show_progress=False)
TOKENS = 32


def _independent(vectors: np.ndarray, labels: list[str], sites: list[str], model, seed: int = 0) -> float:
    """Mean accuracy over folds grouped by site (as many folds as the report used: the smallest class's sites, at most 5)."""
    y, g = np.asarray(labels), np.asarray(sites)
    splits = min(5, min(len(set(g[y == c])) for c in set(labels)), min(np.sum(y == c) for c in set(labels)))
    scores = []
    for train, test in StratifiedGroupKFold(splits, shuffle=True, random_state=seed).split(vectors, y, g):
        scores.append(accuracy_score(y[test], model().fit(vectors[train], y[train]).predict(vectors[test])))
    return float(np.mean(scores))


def _bags(token_arrays: list[np.ndarray], size: int) -> np.ndarray:
    counts = np.stack([np.bincount(np.asarray(t).ravel(), minlength=size) for t in token_arrays]).astype(float)
    return counts / counts.sum(axis=1, keepdims=True)


def _bag_model():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def _vector_model():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))


def _majority():
    return DummyClassifier(strategy="most_frequent")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """24 demo files (3 call types over 4 sites), their mels, a token strategy (MFCC k-means, K=32) and an embedding
    (MFCC frames, (T, 20)) written through the store as strategies write."""
    from bat_core.testing import make_demo_project

    dataset = Dataset.from_root(make_demo_project(tmp_path_factory.mktemp("demo") / "p", n_files=24))
    compute_mels(dataset, MelConfig(), options=QUIET)
    manifest = read_manifest(dataset.paths.manifest_path("mels_48k")).set_index("file_name")
    mels = {item.file_name: np.load(dataset.paths.derived / manifest.loc[item.file_name, "output_path"]) for item in dataset}
    fps = {name: float(manifest.loc[name, "frames_per_second"]) for name in manifest.index}
    tokens = mfcc_kmeans_tokens(mels, seed=7, codes=TOKENS)
    store = RepresentationStore(dataset.paths, "mfcc_tokens", dataset.paths.tokens_dir, {"k": TOKENS},
                                file_pattern="mfcc_tokens_{stem}.npy", kind="tokens", codebook_size=TOKENS)
    for item in store.begin(list(dataset)):
        store.write(item, tokens[item.file_name], frames_per_second=fps[item.file_name], seconds=1.0)
    store.finish()
    store = RepresentationStore(dataset.paths, "mfcc_frames", dataset.paths.derived / "mfcc_frames", {"v": 1}, kind="embedding")
    for item in store.begin(list(dataset)):
        store.write(item, mfcc(mels[item.file_name]), frames_per_second=fps[item.file_name], seconds=1.0)
    store.finish()
    return dataset, mels, fps, tokens


def _compare(report_json, expected: dict[str, float]) -> None:
    rows = {row["name"]: row for row in json.loads(report_json.read_text())["rows"]}
    assert set(rows) == set(expected)
    for name, accuracy in expected.items():
        assert rows[name]["probe_accuracy"] is not None, name
        assert abs(rows[name]["probe_accuracy"] - accuracy) <= 0.05, (name, rows[name]["probe_accuracy"], accuracy)


def test_every_probe_per_file_is_within_005_of_an_independent_probe(demo, tmp_path):
    dataset, mels, _, tokens = demo
    report = evaluate_project(dataset, "call_type", "site", out_dir=tmp_path, examples=0, options=QUIET)
    names = [item.file_name for item in dataset]
    labels, sites = dataset.labels("call_type"), dataset.labels("site")
    baseline_tokens = mfcc_kmeans_tokens(mels, seed=0)  # the baseline's tokens; its bag and probe are rebuilt here
    expected = {
        "mfcc_tokens": _independent(_bags([tokens[n] for n in names], TOKENS), labels, sites, _bag_model),
        "mfcc_frames": _independent(np.stack([mfcc(mels[n]).mean(axis=0) for n in names]), labels, sites, _vector_model),
        "majority": _independent(np.zeros((len(names), 1)), labels, sites, _majority),
        "mfcc_kmeans": _independent(_bags([baseline_tokens[n] for n in names], MFCC_CODES), labels, sites, _bag_model),
        "mean_log_mel": _independent(np.stack([mels[n].mean(axis=1) for n in names]), labels, sites, _vector_model),
    }
    _compare(report.json, expected)


def test_every_probe_per_call_is_within_005_of_an_independent_probe(demo, tmp_path):
    dataset, mels, fps, tokens = demo
    table = pd.read_csv(dataset.paths.root / "data" / "calls.csv")
    report = evaluate_project(dataset, "species", "site", out_dir=tmp_path, examples=0, options=QUIET,
                              calls=str(dataset.paths.root / "data" / "calls.csv"))
    site = {item.file_name: item.labels["site"] for item in dataset}
    cuts = []
    for name, start, end in zip(table["File Name"], table.start_time_s, table.end_time_s):
        first = math.floor(start * fps[name])
        cuts.append((name, slice(first, max(first + 1, math.ceil(end * fps[name])))))
    labels, sites = list(table.species), [site[name] for name, _ in cuts]
    baseline_tokens = mfcc_kmeans_tokens(mels, seed=0)
    expected = {
        "mfcc_tokens": _independent(_bags([tokens[n][c] for n, c in cuts], TOKENS), labels, sites, _bag_model),
        "mfcc_frames": _independent(np.stack([mfcc(mels[n])[c].mean(axis=0) for n, c in cuts]), labels, sites, _vector_model),
        "majority": _independent(np.zeros((len(cuts), 1)), labels, sites, _majority),
        "mfcc_kmeans": _independent(_bags([baseline_tokens[n][c] for n, c in cuts], MFCC_CODES), labels, sites, _bag_model),
        "mean_log_mel": _independent(np.stack([mels[n][:, c].mean(axis=1) for n, c in cuts]), labels, sites, _vector_model),
    }
    _compare(report.json, expected)
