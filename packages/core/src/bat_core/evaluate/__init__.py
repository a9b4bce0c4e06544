"""Do the tokens carry bat information? Statistics, label probes, baselines, a report.

``evaluate_project`` reads every representation's manifest (whatever strategies are installed
and have run), computes token statistics, probes labels with grouped cross-validation, does the
same for baselines, and writes ``derived/report/report.md``, ``report.json`` and figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bat_core.dataset import Dataset
from bat_core.errors import DatasetError
from bat_core.evaluate.baselines import mean_log_mel, mfcc_kmeans_tokens
from bat_core.evaluate.figures import example_figure, usage_figure
from bat_core.evaluate.probes import ProbeResult, bag_of_tokens, probe
from bat_core.evaluate.report import write_report
from bat_core.evaluate.representations import discover
from bat_core.evaluate.statistics import token_statistics
from bat_core.mels import MelConfig, mel_rows
from bat_core.runner import RunOptions

__all__ = ["EvaluationReport", "evaluate_project"]


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


def _probe_row(vectors: dict[str, np.ndarray], names: list[str], labels: dict[str, str], groups: dict[str, str] | None,
               seed: int, majority: bool = False) -> ProbeResult:
    present = [n for n in names if n in vectors]
    if not present or not labels:
        return ProbeResult(notes=["no labels: no probe"] if not labels else ["no files"])
    matrix = np.stack([vectors[n] for n in present])
    return probe(matrix, [labels[n] for n in present], [groups[n] for n in present] if groups else None, seed, majority)


def evaluate_project(dataset: Dataset, label: str | None = None, group: str | None = None, *, out_dir: Path | None = None,
                     examples: int = 3, seed: int = 0, notes: list[str] | None = None,
                     options: RunOptions = RunOptions()) -> EvaluationReport:
    paths = dataset.paths
    out_dir = out_dir or paths.report_dir
    for column in (label, group):
        if column and column not in dataset.label_columns:
            raise DatasetError(f"no column {column!r} in annotations.csv; columns: {dataset.label_columns}")
    names = [item.file_name for item in dataset]
    labels = {item.file_name: item.labels.get(label, "") for item in dataset} if label else {}
    groups = {item.file_name: item.labels.get(group, "") for item in dataset} if group else None
    notes = list(notes or [])

    mel_config = MelConfig()
    ok_rows = {n: r for n, r in mel_rows(dataset, mel_config, options).items() if r["status"] == "ok"}
    mels = {n: np.load(paths.derived / r["output_path"]) for n, r in ok_rows.items()}
    mel_fps = {n: r["frames_per_second"] for n, r in ok_rows.items()}

    rows, figures = [], []
    incomplete: dict[str, list[str]] = {}
    representations = discover(paths, names)
    for representation in representations:
        lacking = sorted(representation.failed_files + representation.missing_files)
        incomplete[representation.name] = lacking
        row = {"name": representation.name, "kind": representation.kind, "files_ok": len(representation.arrays),
               "files_failed": representation.files_failed, "files_missing": len(representation.missing_files),
               "failed_files": representation.failed_files, **representation.provenance}
        if representation.kind == "tokens":
            stats = token_statistics(representation)
            row.update(stats)
            vectors = {n: bag_of_tokens(a, representation.codebook_size) for n, a in representation.arrays.items()}
            figures.append(usage_figure(representation.name, stats["code_counts"], out_dir / f"usage_{representation.name}.png"))
        else:
            vectors = {n: a.ravel().astype(np.float64) for n, a in representation.arrays.items()}
        row.update(_probe_fields(_probe_row(vectors, names, labels, groups, seed)))
        rows.append(row)
    if not representations:
        notes.append("no strategy outputs found in derived/manifests: run a strategy first (baselines only)")

    mfcc_tokens = mfcc_kmeans_tokens(mels, seed) if mels else {}
    baselines = [
        ("majority", {n: np.zeros(1) for n in mels}, True),
        ("mfcc_kmeans", {n: bag_of_tokens(t, 64) for n, t in mfcc_tokens.items()}, False),
        ("mean_log_mel", mean_log_mel(mels), False),
    ]
    mel_failed = sorted(set(names) - set(mels))
    for name, vectors, majority in baselines:
        incomplete[name] = mel_failed
        row = {"name": name, "kind": "baseline", "files_ok": len(vectors), "files_failed": len(names) - len(vectors),
               "files_missing": 0, "failed_files": mel_failed,
               "model_id": "", "layer": "", "time_expansion": f"{mel_config.time_expansion.describe()} (mels_48k)",
               "config_hash": ""}
        row.update(_probe_fields(_probe_row(vectors, names, labels, groups, seed, majority)))
        rows.append(row)

    mfcc_row = next(r for r in rows if r["name"] == "mfcc_kmeans")
    for row in rows:
        if row["kind"] != "baseline" and _below(row, mfcc_row):
            notes.append(f"{row['name']} loses to the MFCC + k-means baseline on probe accuracy "
                         f"({row['probe_accuracy']:.3f} vs {mfcc_row['probe_accuracy']:.3f})")
        for note in row.pop("probe_notes", []):
            notes.append(f"{row['name']}: {note}")
    notes = list(dict.fromkeys(notes))

    token_reps = [r for r in representations if r.kind == "tokens"]
    for file_name in _examples(names, labels, mels, examples):
        figures.append(example_figure(file_name, mels[file_name], mel_fps[file_name], token_reps,
                                      out_dir / f"example_{Path(file_name).stem}.png"))
    header = {"root": str(paths.root), "group": group, "files": len(names),
              "probe": "logistic regression on standardised vectors (bag of tokens + bigrams for token strategies), "
                       "stratified k-fold (grouped when --group is given), mean ± std over folds; NMI and purity of "
                       "k-means with as many clusters as classes"}
    markdown, json_path = write_report(out_dir, label, rows, notes, figures, header)
    return EvaluationReport(rows, notes, markdown, json_path, figures, len(names), incomplete)


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
    for name in names:
        if name in mels and labels.get(name, "") not in seen:
            chosen.append(name)
            seen.add(labels.get(name, ""))
        if len(chosen) == count:
            return chosen
    return chosen + [n for n in names if n in mels and n not in chosen][: count - len(chosen)]
