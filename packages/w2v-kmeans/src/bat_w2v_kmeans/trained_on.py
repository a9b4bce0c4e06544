"""An encoder pretrained by bat-hubert heard bat recordings one way; feed it them the same way.

bat-hubert writes ``bat_hubert_training.json`` beside the weights (its time expansion, per sample
rate, and band). Under ``--time-expansion auto`` that expansion is adopted; an explicit factor or band
top that differs from the encoder's is refused (exit 2): its frames would describe calls at frequencies
the encoder never heard them at, or a band it never heard cut there. So is an encoder pretrained before
bat-core low-passed above the band's top, where its factor let more through: it heard each sample rate's
own empty band, which audio now never shows it. Read as plain JSON: this package does not depend on
bat-hubert.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from bat_core.errors import ConfigMismatchError
from bat_core.time_expansion import TimeExpansion

log = logging.getLogger(__name__)

TRAINING_JSON = "bat_hubert_training.json"


def _record(model: str | Path) -> tuple[Path, dict] | None:
    path = Path(model) / TRAINING_JSON
    return (path, json.loads(path.read_text(encoding="utf-8"))) if path.is_file() else None


def _trained(record: dict) -> TimeExpansion:
    low, high = record["band_hz"]
    return TimeExpansion.parse(record["time_expansion"], band_low_hz=low, band_high_hz=high)


def _factor_by_rate(record: dict) -> dict[float, float]:
    return {float(rate): float(factor) for rate, factor in record.get("time_expansion_by_sample_rate", {}).items()}


def _heard_up_to(record: dict, band_high: float | None) -> float:
    """The highest original frequency the encoder's input held, over its recordings' rates (each capped at its own
    Nyquist), ``band_high`` being where the audio is low-passed (None: no cut, as before bat-core had one)."""
    model_rate = record.get("model_sample_rate", 16_000)
    tops = [min(rate / 2, model_rate / 2 * factor) for rate, factor in _factor_by_rate(record).items()]
    heard = max(tops, default=model_rate / 2 * _trained(record).factor_for(1e9, model_rate))
    return heard if band_high is None else min(heard, band_high)


def _refuse_if_heard_above_the_top(model: str | Path, path: Path, record: dict) -> None:
    high = record["band_hz"][1]
    heard = _heard_up_to(record, None)
    if record.get("low_passed_above_hz") is None and heard > high:
        raise ConfigMismatchError(
            f"{model} was pretrained by an earlier bat-hubert that let through up to {heard:g} Hz of the recordings "
            f"({path.name}); bat-core now low-passes above the band's top ({high:g} Hz), so the encoder would not "
            f"hear them as it learnt: pretrain it again (bat-hubert pretrain ... --overwrite)")


def check_heard_as_now(model: str | Path) -> None:
    """Refuse an encoder pretrained before bat-core low-passed above the band's top, where its input held more than
    that top: it heard each sample rate's own empty band, which its audio now never shows it."""
    found = _record(model)
    if found is not None:
        _refuse_if_heard_above_the_top(model, *found)


def expansion_for_model(model: str | Path, expansion: TimeExpansion) -> TimeExpansion:
    """``expansion`` for a model without a training record; else the one the model was trained with."""
    found = _record(model)
    if found is None:
        return expansion
    path, record = found
    _refuse_if_heard_above_the_top(model, path, record)
    trained = _trained(record)
    low, high = trained.band_low_hz, trained.band_high_hz
    factors = sorted(set(_factor_by_rate(record).values()))
    if expansion.factor is None:
        if (low, high) != (expansion.band_low_hz, expansion.band_high_hz):
            log.info("time expansion and band of %s adopted from its %s", model, TRAINING_JSON)
        return trained
    if factors != [expansion.factor]:
        used = ", ".join(f"{factor:g}" for factor in factors) or trained.describe()
        raise ConfigMismatchError(
            f"--time-expansion {expansion.describe()}: {model} was pretrained on recordings time-expanded x{used} "
            f"({path.name}); pass --time-expansion auto (or {used}) so it hears calls as it learnt them")
    if _heard_up_to(record, expansion.band_high_hz) != _heard_up_to(record, high):
        raise ConfigMismatchError(
            f"--band {expansion.band_low_hz:g} {expansion.band_high_hz:g}: {model} was pretrained on recordings "
            f"low-passed above {high:g} Hz ({path.name}); pass --band {low:g} {high:g} (or --time-expansion auto) so "
            f"it hears the band it learnt")
    return expansion
