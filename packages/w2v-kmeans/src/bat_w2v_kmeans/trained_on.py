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


def _heard_up_to(record: dict, factor_by_rate: dict[float, float], band_high: float | None) -> float:
    """The highest original frequency the encoder's input held, over its recordings' rates (each capped at its own
    Nyquist), ``band_high`` being where the audio is low-passed (None: no cut, as before bat-core had one)."""
    nyquist = record.get("model_sample_rate", 16_000) / 2
    tops = [min(rate / 2, nyquist * factor) for rate, factor in factor_by_rate.items()]
    heard = max(tops, default=nyquist * (float(record["time_expansion"]) if record["time_expansion"] != "auto"
                                         else TimeExpansion().factor_for(1e9, 2 * nyquist)))
    return heard if band_high is None else min(heard, band_high)


def check_heard_as_now(model: str | Path) -> None:
    """Refuse an encoder pretrained before bat-core low-passed above the band's top, where its input held more than
    that top: it heard each sample rate's own empty band, which its audio now never shows it."""
    found = _record(model)
    if found is None:
        return
    path, record = found
    high = record["band_hz"][1]
    rates = {float(rate): float(factor) for rate, factor in record.get("time_expansion_by_sample_rate", {}).items()}
    heard = _heard_up_to(record, rates, None)
    if record.get("low_passed_above_hz") is None and heard > high:
        raise ConfigMismatchError(
            f"{model} was pretrained by an earlier bat-hubert that let through up to {heard:g} Hz of the recordings "
            f"({path.name}); bat-core now low-passes above the band's top ({high:g} Hz), so the encoder would not "
            f"hear them as it learnt: pretrain it again (bat-hubert pretrain ... --overwrite)")


def expansion_for_model(model: str | Path, expansion: TimeExpansion) -> TimeExpansion:
    """``expansion`` for a model without a training record; else the one the model was trained with."""
    found = _record(model)
    if found is None:
        return expansion
    path, record = found
    check_heard_as_now(model)
    low, high = record["band_hz"]
    trained = TimeExpansion.parse(record["time_expansion"], band_low_hz=low, band_high_hz=high)
    rates = {float(rate): float(factor) for rate, factor in record.get("time_expansion_by_sample_rate", {}).items()}
    factors = sorted(set(rates.values()))
    if expansion.factor is None:
        if (trained.band_low_hz, trained.band_high_hz) != (expansion.band_low_hz, expansion.band_high_hz):
            log.info("time expansion and band of %s adopted from its %s", model, TRAINING_JSON)
        return trained
    if factors != [expansion.factor]:
        used = ", ".join(f"{factor:g}" for factor in factors) or trained.describe()
        raise ConfigMismatchError(
            f"--time-expansion {expansion.describe()}: {model} was pretrained on recordings time-expanded x{used} "
            f"({path.name}); pass --time-expansion auto (or {used}) so it hears calls as it learnt them")
    if _heard_up_to(record, rates, expansion.band_high_hz) != _heard_up_to(record, rates, high):
        raise ConfigMismatchError(
            f"--band {expansion.band_low_hz:g} {expansion.band_high_hz:g}: {model} was pretrained on recordings "
            f"low-passed above {high:g} Hz ({path.name}); pass --band {low:g} {high:g} (or --time-expansion auto) so "
            f"it hears the band it learnt")
    return expansion
