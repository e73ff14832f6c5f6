"""Write files so a crash or kill never leaves one that looks complete."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: Path, keep_suffix: bool = False) -> Iterator[str]:
    """Yield a temporary name beside `path`; rename it into place only if the block succeeds.
    keep_suffix: the temporary name ends like `path` (for writers that pick a format by it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
