"""Loading models by name or path, as Hugging Face does, with one clear error when that fails.

Tries the local folder or the Hugging Face cache first; only then the hub, and only when
the hub's host resolves (an offline machine would otherwise spend ~50 s in retries).
Transformers is not imported here: callers pass their own ``from_pretrained``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bat_core.errors import ModelNotFoundError

Loaded = TypeVar("Loaded")
HUB_HOST = "huggingface.co"


def load_pretrained(load: Callable[..., Loaded], name_or_path: str, what: str = "model") -> Loaded:
    """``load(name_or_path, local_files_only=...)``, or ModelNotFoundError naming ``--model PATH``."""
    local = Path(name_or_path).expanduser()
    try:
        return load(str(local) if local.exists() else name_or_path, local_files_only=True)
    except (OSError, ValueError) as local_error:
        if local.exists():
            raise ModelNotFoundError(
                f"{local} exists but is not a usable {what} checkpoint ({_first_line(local_error)}); "
                "pass --model PATH to a folder holding config.json and the weights (save_pretrained writes one)"
            ) from local_error
        if not _hub_reachable():
            raise ModelNotFoundError(
                f"cannot load {what} {name_or_path!r}: it is not in the local Hugging Face cache and "
                f"{HUB_HOST} cannot be reached (offline). Download it where there is network "
                f"(`huggingface-cli download {name_or_path}`) and pass --model PATH, the folder with "
                "config.json and the weights"
            ) from local_error
    try:
        return load(name_or_path)
    except (OSError, ValueError) as error:
        raise ModelNotFoundError(
            f"cannot load {what} {name_or_path!r}: {_first_line(error)}. Check the name, or pass --model PATH "
            "to a local folder with config.json and the weights"
        ) from error


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0", "false", "False"):
        return False
    previous = socket.getdefaulttimeout()
    try:
        socket.setdefaulttimeout(timeout)
        socket.getaddrinfo(HUB_HOST, 443)
        return True
    except OSError:
        return False
    finally:
        socket.setdefaulttimeout(previous)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
