"""Fail fast when the Hugging Face hub cannot be reached, instead of a minute of retries.

    unreachable = a TCP connection to the hub ($HF_ENDPOINT, default huggingface.co:443) does not open in 3 s

``datasets`` and ``transformers`` retry an unreachable hub for about 30-50 s before their error, and then name
neither the local copy nor the option that avoids the hub. Hub look-ups of this package ask first: a dataset
(``data.py``) when no offline variable is set (with ``$HF_HUB_OFFLINE`` the libraries read their cache without
retrying), a model (``full_run``, ``evaluate``) unless it is in the local cache. The probe runs once per process.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0
"""Seconds the TCP probe waits for the hub."""

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def offline_variable() -> str | None:
    """The first offline variable that is set (``$HF_HUB_OFFLINE=1`` ...), or None."""
    return next((v for v in OFFLINE_VARIABLES if os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")),
                None)


@functools.lru_cache(maxsize=1)
def probe_failure() -> str | None:
    """None when the hub accepts a TCP connection within ``PROBE_TIMEOUT_S``; else what failed."""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S):
            return None
    except OSError as e:
        return f"{host}:{port} is unreachable ({e.strerror or type(e).__name__})"


def model_unreachable_reason(model: str) -> str | None:
    """Why the hub model ``model`` cannot be loaded here (not cached, and offline or unreachable), or None."""
    from huggingface_hub import try_to_load_from_cache

    try:
        if isinstance(try_to_load_from_cache(model, "config.json"), str):
            return None
    except ValueError:  # not a valid repository id: let the loader say so
        return None
    variable = offline_variable()
    return f"${variable} is set and it is not in the local cache" if variable else probe_failure()
