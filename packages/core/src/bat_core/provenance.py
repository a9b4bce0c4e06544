"""Config hashes and package versions: what makes an output reproducible."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from importlib import metadata
from typing import Any


def config_dict(config: Any) -> dict:
    """A frozen dataclass (nested ones too) as plain JSON-able data."""
    if dataclasses.is_dataclass(config):
        return dataclasses.asdict(config)
    if isinstance(config, dict):
        return dict(config)
    raise TypeError(f"config must be a dataclass or dict, got {type(config).__name__}")


def config_hash(config: Any) -> str:
    """Stable 16-hex-digit hash of a configuration; equal configs give equal hashes."""
    text = json.dumps(config_dict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Installed versions of the named distributions (``"absent"`` if not installed)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions
