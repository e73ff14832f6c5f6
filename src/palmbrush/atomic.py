"""Every file write: a crash or kill never leaves one that looks complete, and nothing a
command reads or did not make is written over."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import PalmbrushError


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


def check_target(path: Path, inputs: Iterable[Path] = (), overwrite: bool = False) -> None:
    """The one rule for every file a command writes: never a folder, never one of the command's
    inputs (not even with overwrite), never an existing file unless `overwrite`."""
    if path.is_dir():
        raise PalmbrushError(f"{path}: is a folder; give a file name")
    for source in inputs:
        if _same_file(path, Path(source)):
            raise PalmbrushError(f"{path}: is also an input; refusing to write over it")
    if path.exists() and not overwrite:
        raise PalmbrushError(f"{path}: exists (pass --overwrite to replace it)")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (links included), or would once `a` is written."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()
