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
    keep_suffix: the temporary name ends like `path` (for writers that pick a format by it).
    The system refusing the folder or the name is one PalmbrushError line."""
    suffix = f".tmp{path.suffix}" if keep_suffix else ".tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    except OSError as exc:
        raise PalmbrushError(f"{path}: cannot be written ({exc.strerror})") from None
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


class Inputs:
    """The files a command reads, identified once: by device and inode where they exist (so a
    link to one is caught), by resolved path otherwise. `path in inputs` is one lookup."""

    def __init__(self, paths: Iterable[str | os.PathLike] = ()):
        self.ids: set[tuple[int, int]] = set()
        self.paths: set[Path] = set()
        for path in map(Path, paths):
            self.paths.add(path.resolve())
            with contextlib.suppress(OSError):
                self.ids.add(_identity(path))

    def __contains__(self, path: Path) -> bool:
        with contextlib.suppress(OSError):
            if _identity(path) in self.ids:
                return True
        return path.resolve() in self.paths


def _identity(path: Path) -> tuple[int, int]:
    status = path.stat()
    return status.st_dev, status.st_ino


def check_target(path: Path, inputs: Inputs | Iterable[Path] = (), overwrite: bool = False
                 ) -> None:  # fmt: skip
    """The one rule for every file a command writes: never a folder, never one of the command's
    inputs (not even with overwrite), never an existing file (or link) unless `overwrite`, and
    only where a folder can hold it (missing folders are made when it is written)."""
    inputs = inputs if isinstance(inputs, Inputs) else Inputs(inputs)
    try:
        if path.is_dir():
            raise PalmbrushError(f"{path}: is a folder; give a file name")
        if path in inputs:
            raise PalmbrushError(f"{path}: is also an input; refusing to write over it")
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise PalmbrushError(f"{path}: exists (pass --overwrite to replace it)")
        _check_folder(path)
    except OSError as exc:  # a name too long, a folder we may not look into
        raise PalmbrushError(f"{path}: cannot be written ({exc.strerror})") from None


def _check_folder(path: Path) -> None:
    """The nearest existing folder above `path` is a folder we may write in."""
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise PalmbrushError(f"{path}: cannot be written ({folder} is a file, not a folder)")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PalmbrushError(f"{path}: cannot be written (folder {folder} is not writable)")
