"""Every file and folder the project writes, written whole: into a temporary name beside the
target, then renamed onto it, so that a reader (or a run stopped mid-write) never sees half
of one. One place for it, used by results, records, reports, adapters and the model cache."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from cram_harness.errors import CramError


def write_json_atomic(path: Path, data: object) -> None:
    text = json.dumps(data, indent=2, sort_keys=False, default=str, allow_nan=True) + "\n"
    write_text_atomic(path, text)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write whole; renamed onto `path` on success,
    removed on failure, so readers never see half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(21, "Is a directory", str(path))
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise CramError(f"cannot write {path}: {exc.filename or path.parent} is in the way "
                        f"({exc.strerror}): choose another place") from None
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would make results private
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_dir(target: Path, replace: bool = True) -> Iterator[Path]:
    """A temporary folder beside `target` to fill; on success it becomes `target` whole, on
    failure it is removed. An existing `target` is replaced (moved aside first, then
    deleted), or with `replace=False` kept: another process that wrote it first wins."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        if replace and target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
            return
        try:
            os.replace(tmp, target)
        except OSError:
            if replace or not target.exists():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
