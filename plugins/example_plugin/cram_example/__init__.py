"""An example cram-harness plugin: a task directory, a data source and a model alias.

pyproject.toml declares them as entry points; cram-harness finds them once the package is
installed. Nothing here imports torch, so `cram-eval ls` stays instant.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

from cram_harness.data import SourceText
from cram_harness.errors import CramError

HERE = Path(__file__).resolve().parent


def task_dir() -> Path:
    """Entry point `cram_harness.tasks`: the directory of this package's task YAML."""
    return HERE / "tasks"


class BundledLines:
    """Entry point `cram_harness.data` (kind `bundled_lines`): one text per non-empty line of
    a text file shipped in this package, in file order."""

    def __init__(self, file: str = "first_lines.txt") -> None:
        resource = files("cram_example") / "data" / file
        if not resource.is_file():
            raise CramError(f"bundled_lines: no file {file!r} in cram_example/data")
        self.file = file
        self.name = f"bundled_lines:{file}"
        self.lines = [line.strip() for line in resource.read_text(encoding="utf-8").splitlines()
                      if line.strip()]

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        """The first `limit` lines (all when None). The ids stay the same whatever the limit;
        `seed` is unused: the texts are fixed."""
        return [SourceText(f"{self.file}#{i}", line)
                for i, line in enumerate(self.lines[:limit])]

    def describe(self) -> dict:
        """What goes into the results file about these texts."""
        return {"kind": "bundled_lines", "file": self.file, "lines": len(self.lines)}


def example_model() -> Path:
    """Entry point `cram_harness.models` (alias `example-model`): a directory saved with
    `save_pretrained`, here wherever $CRAM_EXAMPLE_MODEL points (default ~/models/example)."""
    path = Path(os.environ.get("CRAM_EXAMPLE_MODEL", "~/models/example")).expanduser()
    if not (path / "config.json").is_file():
        raise CramError(f"model alias 'example-model': no model saved at {path}; set "
                        "CRAM_EXAMPLE_MODEL to a directory written by save_pretrained")
    return path
