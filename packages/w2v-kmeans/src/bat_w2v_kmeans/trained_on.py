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


def expansion_for_model(model: str | Path, expansion: TimeExpansion) -> TimeExpansion:
    """``expansion`` for a model without a training record; else the one the model was trained with."""
    path = Path(model) / TRAINING_JSON
    if not path.is_file():
        return expansion
    record = json.loads(path.read_text(encoding="utf-8"))
    low, high = record["band_hz"]
    trained = TimeExpansion.parse(record["time_expansion"], band_low_hz=low, band_high_hz=high)
    factors = sorted(set(record.get("time_expansion_by_sample_rate", {}).values()))
    heard = record.get("model_sample_rate", 16_000) / 2 * max(factors, default=1.0)
    if record.get("low_passed_above_hz") is None and heard > high:
        raise ConfigMismatchError(
            f"{model} was pretrained by an earlier bat-hubert that let through up to {heard:g} Hz of the recordings "
            f"({path.name}); bat-core now low-passes above the band's top ({high:g} Hz), so the encoder would not "
            f"hear them as it learnt: pretrain it again (bat-hubert pretrain ... --overwrite)")
    if expansion.factor is None:
        if (trained.band_low_hz, trained.band_high_hz) != (expansion.band_low_hz, expansion.band_high_hz):
            log.info("time expansion and band of %s adopted from its %s", model, TRAINING_JSON)
        return trained
    if factors != [expansion.factor]:
        used = ", ".join(f"{factor:g}" for factor in factors) or trained.describe()
        raise ConfigMismatchError(
            f"--time-expansion {expansion.describe()}: {model} was pretrained on recordings time-expanded x{used} "
            f"({path.name}); pass --time-expansion auto (or {used}) so it hears calls as it learnt them")
    if expansion.band_high_hz != high:
        raise ConfigMismatchError(
            f"--band {expansion.band_low_hz:g} {expansion.band_high_hz:g}: {model} was pretrained on recordings "
            f"low-passed above {high:g} Hz ({path.name}); pass --band {low:g} {high:g} (or --time-expansion auto) so "
            f"it hears the band it learnt")
    return expansion
