"""Where palmbrush keeps what it makes once per machine: downloaded loss-network weights and
the cpu engine's generated kernels. ~/.cache/palmbrush, or $PALMBRUSH_CACHE."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("PALMBRUSH_CACHE", Path.home() / ".cache" / "palmbrush"))
