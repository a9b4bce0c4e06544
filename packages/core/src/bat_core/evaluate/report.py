"""Turn rows into report.md + report.json (the machine-readable contract other tools read)."""

from __future__ import annotations

import json
import math
from pathlib import Path

COLUMNS = [
    ("name", "representation"), ("kind", "kind"), ("files", "files ok/failed"), ("codes", "codes used/K"),
    ("perplexity", "perplexity"), ("entropy_bits", "bits/token"), ("tokens_per_second", "tokens/s"),
    ("mean_run_length", "mean run"), ("probe", "probe accuracy"), ("chance_accuracy", "chance"), ("f1", "macro-F1"), ("nmi", "NMI"),
    ("purity", "purity"), ("model_id", "model"), ("layer", "layer"), ("time_expansion", "time exp."),
    ("config_hash", "config hash"),
]


def _number(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _cell(row: dict, key: str) -> str:
    if key == "files":
        return f"{row.get('files_ok', '-')}/{row.get('files_failed', '-')}"
    if key == "calls":
        return f"{row.get('calls_ok', '-')}/{row.get('calls_missing', '-')}"
    if key == "codes":
        return f"{row['codes_used']}/{row['codebook_size']}" if row.get("codebook_size") else "-"
    if key == "probe":
        return f"{_number(row.get('probe_accuracy'))} ± {_number(row.get('probe_accuracy_std'))}"
    if key in ("nmi", "purity"):
        return f"{_number(row.get(key))} ± {_number(row.get(key + '_std'))}"
    if key == "f1":
        return f"{_number(row.get('probe_macro_f1'))} ± {_number(row.get('probe_macro_f1_std'))}"
    if key in ("perplexity", "tokens_per_second", "mean_run_length"):
        return _number(row.get(key), 1)
    return _number(row.get(key)) if isinstance(row.get(key), float) else str(row.get(key) or "-")


def strict_json(value):
    """JSON every parser accepts: NaN and infinities become null, numpy scalars plain numbers, paths strings."""
    if isinstance(value, dict):
        return {str(key): strict_json(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(inner) for inner in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return str(value)


def write_report(out_dir: Path, label: str | None, rows: list[dict], notes: list[str], figures: list[Path],
                 header: dict) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    clean_rows = [{k: v for k, v in row.items() if k != "code_counts"} for row in rows]
    json_path = out_dir / "report.json"
    document = strict_json({"label": label, **header, "notes": notes, "rows": clean_rows})
    json_path.write_text(json.dumps(document, indent=2, allow_nan=False))
    lines = [f"# Representation report: {header.get('root', '')}", ""]
    lines.append(f"Label: `{label}`" if label else "Label: none (token statistics only; pass --label COLUMN for probes)")
    if header.get("unit") == "call":
        lines += ["", f"Per call: {header.get('calls')} calls ({header.get('files_with_calls')} files) of the box table "
                      f"`{header.get('calls_table')}` are the units "
                      f"probed and clustered; labels from {header.get('label_source') or '-'}. Folds never split a recording."]
    if header.get("group"):
        lines.append(f"Cross-validation folds never split a `{header['group']}` group.")
    lines += [f"Files selected: {header.get('files')}. Probes: {header.get('probe')}.", ""]
    lines += [f"Token features: {header.get('token_features')}.", ""]
    if header.get("class_counts") is not None:
        balance = ", ".join(f"{name}: {count}" for name, count in header["class_counts"].items())
        lines += [f"Classes: {balance}; unlabelled (left out of probes): {header.get('unlabelled_files', 0)}; "
                  f"chance (largest class): {_number(header.get('chance_accuracy'))}.", ""]
    columns = COLUMNS[:3] + [("calls", "calls ok/missing")] + COLUMNS[3:] if header.get("unit") == "call" else COLUMNS
    lines.append("| " + " | ".join(title for _, title in columns) + " |")
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        lines.append("| " + " | ".join(_cell(row, key) for key, _ in columns) + " |")
    lines.append("")
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}]({f.relative_to(out_dir)})" for f in figures] + [""]
    markdown_path = out_dir / "report.md"
    markdown_path.write_text("\n".join(lines))
    return markdown_path, json_path
