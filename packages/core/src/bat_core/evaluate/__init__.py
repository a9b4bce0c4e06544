"""Do the tokens carry bat information? Statistics, label probes, baselines, a report.

``evaluate_project`` reads every representation's manifest (whatever strategies are installed
and have run), computes token statistics, probes labels with grouped cross-validation, does the
same for baselines, and writes ``derived/report/report.md``, ``report.json`` and figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from sklearn.preprocessing import StandardScaler

from bat_core.dataset import Dataset
from bat_core.errors import DatasetError
from bat_core.evaluate.baselines import MFCC_CODES, baseline_mels, mean_log_mel, mfcc_kmeans_tokens
from bat_core.evaluate.features import BlockScaler, SparseRows, TokenFeatures, file_features
from bat_core.evaluate.figures import confusion_figure, example_figure, map_figure, project_2d, usage_figure
from bat_core.evaluate.per_call import call_arrays, call_labels, describe_source, has_time_axis, mel_slices, read_call_boxes
from bat_core.evaluate.probes import CLUSTER_SEEDS, UNLABELLED, ProbeResult, clean_label, probe
from bat_core.evaluate.report import write_report
from bat_core.evaluate.representations import discover
from bat_core.evaluate.statistics import TokenStatistics
from bat_core.mels import MelConfig
from bat_core.runner import RunOptions

__all__ = ["EvaluationReport", "TokenFeatures", "evaluate_project"]


@dataclass
class EvaluationReport:
    rows: list[dict]
    notes: list[str]
    markdown: Path
    json: Path
    figures: list[Path]
    files: int = 0
    incomplete: dict[str, list[str]] = field(default_factory=dict)  # representation or baseline -> selected files it lacks (failed or missing)

    def line(self) -> str:
        """One line accounting for every selected file."""
        lacking = {name: files for name, files in (self.incomplete or {}).items() if files}
        text = f"evaluate: {self.files} files, {len(self.rows)} rows -> {self.markdown}"
        if lacking:
            text += "; files missing or failed in: " + ", ".join(f"{name} ({len(files)})" for name, files in lacking.items())
        return text


KNOWN_STRATEGIES = {"w2v_kmeans": "bat-w2v-kmeans run", "vqvae": "bat-vqvae encode", "ast": "bat-ast-embed embed"}


def _probe_row(vectors, present: list[str], labels: dict[str, str], groups: dict[str, str] | None, seed: int,
               majority: bool = False, standardise: bool = True, blocks=None) -> ProbeResult:
    if not present or not labels:
        return ProbeResult(notes=["no labels: no probe"] if not labels else ["no files"])
    return probe(vectors, [labels[n] for n in present], [groups[n] for n in present] if groups else None, seed,
                 majority, standardise, blocks)


def _read_vectors(kind: str, codebook_size: int | None, items, features: TokenFeatures,
                  along_time: bool = False) -> tuple[object, list, dict]:
    """One pass over ``items`` ((unit, array, seconds): files or calls): sparse token features and statistics,
    or stacked embedding vectors (2-D embeddings averaged over time; ``along_time``: every array's axis 0 is
    time, as in a call's rows, so 1-D ones are averaged too)."""
    present: list = []
    if kind == "tokens":
        stats = TokenStatistics(codebook_size or 1)
        rows = SparseRows(features.width(stats.codebook_size))
        for unit, codes, seconds in items:
            rows.append(*file_features(codes, stats.codebook_size, features))
            stats.add(codes, seconds)
            present.append(unit)
        return rows.matrix(), present, {**stats.fields(), "features": features.describe()}
    vectors = []
    for unit, array, _ in items:
        vectors.append(np.asarray(array, dtype=np.float64).reshape(len(array), -1).mean(axis=0)
                       if array.ndim > 1 or along_time else np.asarray(array, dtype=np.float64))
        present.append(unit)
    width = max((len(v) for v in vectors), default=0)
    return (np.stack(vectors) if vectors else np.zeros((0, width))), present, {
        "features": "the stored vector, standardised (2-D outputs: mean over time)"}


def evaluate_project(dataset: Dataset, label: str | None = None, group: str | None = None, *, out_dir: Path | None = None,
                     examples: int = 3, seed: int = 0, notes: list[str] | None = None,
                     options: RunOptions = RunOptions(), features: TokenFeatures = TokenFeatures(),
                     calls: str | None = None) -> EvaluationReport:
    """The report of every representation of ``dataset``'s files; with ``calls`` (a box table's path, or
    ``detected``), per call instead of per file (``bat_core.evaluate.per_call``)."""
    paths = dataset.paths
    out_dir = out_dir or paths.report_dir
    names = [item.file_name for item in dataset]
    boxes = read_call_boxes(calls, paths, names) if calls else None
    in_boxes = boxes is not None and label is not None and label in boxes.table.columns
    for column in (label, group):
        if column and column not in dataset.label_columns and not (column == label and in_boxes):
            raise DatasetError(f"no column {column!r} in annotations.csv; columns: {dataset.label_columns}"
                               + (f"; box table columns: {list(boxes.table.columns)}" if boxes is not None else ""))
    file_labels = ({item.file_name: item.labels.get(label, "") for item in dataset}
                   if label and label in dataset.label_columns else None)
    file_groups = {item.file_name: item.labels.get(group, "") for item in dataset} if group else None
    notes = list(notes or [])
    unit_header: dict = {"unit": "file"}
    if boxes is None:
        units: list = names
        raw_labels = file_labels or {}
        groups = file_groups
    else:
        units = boxes.keys
        raw_labels, label_source = call_labels(boxes, label, file_labels) if label else ({}, "")
        groups = {key: file_groups[key[0]] if file_groups else key[0] for key in units}
        unit_header = {"unit": "call", "calls_table": boxes.source, "calls": len(units),
                       "files_with_calls": int(boxes.table["File Name"].nunique()),
                       "calls_outside_selection": boxes.outside, "label_source": label_source,
                       "detector_table": boxes.ours}
        if not raw_labels and label:
            notes.append(f"--label {label}: {label_source}")
        if boxes.outside:
            notes.append(f"{boxes.outside} calls of the box table are in files outside this selection: left out")
    labels = {unit: clean_label(value) for unit, value in raw_labels.items()}

    mel_config = MelConfig()
    mel_dataset = dataset  # per call: the baselines need the mels of the files with calls only
    if boxes is not None:
        boxed = set(boxes.table["File Name"])
        mel_dataset = Dataset(paths, [item for item in dataset if item.file_name in boxed], dataset.label_columns)
    mels, mel_fps, mel_provenance, mel_notes = baseline_mels(mel_dataset, mel_config, options)
    notes += mel_notes

    rows, figures = [], []
    incomplete: dict[str, list[str]] = {}
    per_call: list[str] = []
    representations = discover(paths, names, per_call, calls=boxes is not None)
    if per_call:
        notes.append(f"per-call representations not evaluated (this report is per file; --calls TABLE evaluates per "
                     f"call): {', '.join(per_call)}")
    for representation in representations:
        if boxes is None:
            items = ((name, array, representation.seconds[name]) for name, array in representation.arrays())
        elif has_time_axis(representation):
            items = call_arrays(representation, boxes, paths)
        else:
            notes.append(f"{representation.name}: one vector per file (no time axis, no sequence kept): not "
                         "evaluated per call")
            continue
        vectors, present, fields = _read_vectors(representation.kind, representation.codebook_size, items, features,
                                                 along_time=boxes is not None)
        lacking = sorted(representation.failed_files + representation.missing_files)
        incomplete[representation.name] = lacking
        row = {"name": representation.name, "kind": representation.kind, "files_ok": representation.files_ok,
               "files_failed": representation.files_failed, "files_missing": len(representation.missing_files),
               "failed_files": representation.failed_files, **representation.provenance, **fields}
        if boxes is not None:
            row.update(calls_ok=len(present), calls_missing=len(units) - len(present),
                       call_features=describe_source(representation))
        if representation.kind == "tokens":
            figures.append(usage_figure(representation.name, fields["code_counts"], out_dir / f"usage_{representation.name}.png"))
        tokens = representation.kind == "tokens"
        blocks = features.blocks(fields["codebook_size"]) if tokens else None
        row.update(_probe_fields(_probe_row(vectors, present, labels, groups, seed, standardise=not tokens, blocks=blocks)))
        figures += _probe_figures(row, vectors, present, labels, blocks, unit_header["unit"], out_dir)
        notes += [f"{representation.name}: {note}" for note in representation.notes]
        rows.append(row)
    absent = [f"{prefix} ({command})" for prefix, command in KNOWN_STRATEGIES.items()
              if not any(r.name.startswith(prefix) for r in representations)]
    if absent:
        notes.append("strategies absent from this report (no manifest in derived/manifests): " + ", ".join(absent))

    mel_wanted = [item.file_name for item in mel_dataset]
    mel_names = [n for n in mel_wanted if n in mels]
    mfcc_tokens = mfcc_kmeans_tokens({n: mels[n] for n in mel_names}, seed) if mels else {}
    if boxes is None:
        cuts = [(name, name, slice(None)) for name in mel_names]
    else:
        cuts = list(mel_slices(mels, mel_fps, boxes))
    base_units = [unit for unit, _, _ in cuts]
    mfcc_rows = SparseRows(features.width(MFCC_CODES))
    for _, name, frames in cuts:
        mfcc_rows.append(*file_features(mfcc_tokens[name][frames], MFCC_CODES, features))
    mean_mels = mean_log_mel({unit: mels[name][:, frames] for unit, name, frames in cuts})
    baselines = [
        ("majority", np.zeros((len(base_units), 1)), True, True, "always the largest training class", None),
        ("mfcc_kmeans", mfcc_rows.matrix(), False, False, f"MFCC + k-means ({MFCC_CODES} codes); {features.describe()}",
         features.blocks(MFCC_CODES)),
        ("mean_log_mel", np.stack([mean_mels[u] for u in base_units]) if base_units else np.zeros((0, 1)), False, True,
         "time-averaged log-mel, standardised", None),
    ]
    mel_failed = sorted(set(mel_wanted) - set(mels))
    for name, vectors, majority, standardise, description, blocks in baselines:
        incomplete[name] = mel_failed
        row = {"name": name, "kind": "baseline", "files_ok": len(mel_names), "files_failed": len(mel_failed),
               "files_missing": 0, "failed_files": mel_failed, "features": description, **mel_provenance}
        if boxes is not None:
            row.update(calls_ok=len(base_units), calls_missing=len(units) - len(base_units),
                       call_features="slices by time of each file's log-mel (frames per second from the mel manifest)")
        row.update(_probe_fields(_probe_row(vectors, base_units, labels, groups, seed, majority, standardise, blocks)))
        if not majority:
            figures += _probe_figures(row, vectors, base_units, labels, blocks, unit_header["unit"], out_dir)
        rows.append(row)

    mfcc_row = next(r for r in rows if r["name"] == "mfcc_kmeans")
    for row in rows:
        if row["kind"] != "baseline" and _below(row, mfcc_row):
            notes.append(f"{row['name']} loses to the MFCC + k-means baseline on probe accuracy "
                         f"({row['probe_accuracy']:.3f} vs {mfcc_row['probe_accuracy']:.3f})")
        for note in row.pop("probe_notes", []):
            notes.append(f"{row['name']}: {note}")
    notes = list(dict.fromkeys(notes))

    token_reps = [r for r in representations if r.kind == "tokens" and not r.per_call]
    for file_name in _examples(names, file_labels or {}, mels, examples):
        figures.append(example_figure(file_name, mels[file_name], mel_fps[file_name], token_reps,
                                      out_dir / f"example_{Path(file_name).stem}.png"))
    splits = ("folds never split a recording, nor a --group when given" if boxes is not None
              else "folds never split a --group when given")
    header = {"root": str(paths.root), "group": group, "files": len(names), "token_features": features.describe(),
              **unit_header,
              "probe": "logistic regression, C=1 (token bags: frequencies, each column scaled by its standard "
                       "deviation on the training folds, n-gram blocks kept at their weight; other vectors: "
                       f"standardised), stratified k-fold ({splits}; undefined when "
                       "a class has fewer than two groups), mean ± std over folds; chance = largest class share; "
                       f"NMI and purity of k-means with as many clusters as classes, mean ± std over {CLUSTER_SEEDS} seeds",
              **_class_balance(labels)}
    markdown, json_path = write_report(out_dir, label, rows, notes, figures, header)
    return EvaluationReport(rows, notes, markdown, json_path, figures, len(names), incomplete)


def _probe_figures(row: dict, vectors, present: list, labels: dict, blocks, unit: str, out_dir: Path) -> list[Path]:
    """The row's confusion matrix (when its probe is defined) and its 2-D map, of the vectors scaled as the probe
    scales them (token bags block-wise, other vectors standardised)."""
    drawn = []
    if row.get("probe_defined") and row.get("confusion"):
        drawn.append(confusion_figure(row["name"], row["confusion_classes"], row["confusion"],
                                      out_dir / f"confusion_{row['name']}.png"))
    if len(present) >= 3 and vectors.shape[1] >= 3:
        scaled = BlockScaler(blocks).fit_transform(vectors) if blocks else StandardScaler().fit_transform(vectors)
        projected = project_2d(scaled)
        if projected is not None:
            drawn.append(map_figure(row["name"], *projected, [labels.get(unit_id, "") for unit_id in present], unit,
                                    out_dir / f"map_{row['name']}.png"))
    return drawn


def _class_balance(labels: dict[str, str]) -> dict:
    if not labels:
        return {}
    counts = Counter(labels.values())
    unlabelled = counts.pop(UNLABELLED, 0)
    total = sum(counts.values())
    return {"class_counts": dict(sorted(counts.items())), "unlabelled_files": unlabelled,
            "chance_accuracy": max(counts.values()) / total if total else None}


def _probe_fields(result: ProbeResult) -> dict:
    fields = asdict(result)
    fields["probe_notes"] = fields.pop("notes")
    fields["probe_files"] = fields.pop("files")
    return fields


def _below(row: dict, reference: dict) -> bool:
    a, b = row.get("probe_accuracy"), reference.get("probe_accuracy")
    return a is not None and b is not None and not np.isnan(a) and not np.isnan(b) and a < b


def _examples(names: list[str], labels: dict[str, str], mels: dict, count: int) -> list[str]:
    """A few files with mels, one per label first, so the figures show different classes."""
    chosen, seen = [], set()
    if count <= 0:  # --examples 0: none (the loop below only stops on reaching a positive count)
        return chosen
    for name in names:
        if name in mels and labels.get(name, "") not in seen:
            chosen.append(name)
            seen.add(labels.get(name, ""))
        if len(chosen) == count:
            return chosen
    return chosen + [n for n in names if n in mels and n not in chosen][: count - len(chosen)]
