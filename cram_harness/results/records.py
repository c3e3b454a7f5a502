"""The records: one finished sample per JSON line, and the file that keeps them.

A record is a JSON line. `SampleRecord` reads the fields results are made of by name and
keeps the line's other fields (settings, timings, the vectors' seed token) as they were, so
`to_json()` writes back what `from_json()` read: records of older versions still load and
resume. It reads like a mapping too (`rec["length"]`), for the code that serializes it.

A record's key hashes what makes it reusable (model and revision, text hash, length,
number of [mem] vectors, optimizer settings), so a rerun skips every finished sample.
`RecordStore` appends each whole, under an exclusive lock (filelock, on `.lock.<file stem>`:
it works on every OS), one line with fsync, so two processes never interleave; a damaged
line (a run killed mid-write) is skipped with a warning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from filelock import FileLock

from cram_harness import schemas
from cram_harness.atomic import atomic_path
from cram_harness.errors import CramError
from cram_harness.metrics import LOSSLESS_THRESHOLD


def record_key(model: str, text_sha256: str, length: int, n_mem: int, optimizer: dict) -> str:
    """What makes a record reusable: model and revision, text, length, number of [mem]
    vectors and the optimizer settings (a rerun with all of these equal skips the sample)."""
    blob = json.dumps([model, text_sha256, length, n_mem, optimizer], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True, eq=False)
class SampleRecord(Mapping):
    """Equal to another record, or a dict, with the same JSON form (`Mapping`'s equality);
    `json.dumps` takes `to_json()`, not the record."""

    key: str = ""  # "" where the record is not kept in a file (lm-eval's per-request lines)
    length: int  # L, the crammed tokens (BOS included where the tokenizer adds one)
    best_accuracy: float
    greedy_exact: bool
    base_accuracy: float = 0.0
    base_loss: float = 0.0
    best_loss: float = 0.0
    min_loss: float | None = None  # absent in records of an older cram-harness
    token_gain: float = 0.0
    information_gain: float = 0.0
    information_gain_bits: float = 0.0
    greedy_accuracy: float | None = None
    first_mismatch: int | None = None  # index into the predicted tokens of the first miss
    num_predicted: int = 1
    steps: int = 0
    numerical_fault: bool = False
    sample_id: str | None = None
    dataset: str | None = None
    sampling: str | None = None
    other: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    given: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # read

    @classmethod
    def from_json(cls, line: Mapping[str, Any]) -> SampleRecord:
        names = {f.name for f in dataclasses.fields(cls)} - {"other", "given"}
        known = {k: v for k, v in line.items() if k in names}
        return cls(**known, other={k: v for k, v in line.items() if k not in names},
                   given=frozenset(known))

    def to_json(self) -> dict[str, Any]:
        """The line: what was read, with the fields set since (a default is not written)."""
        return dict(self._json)

    @cached_property
    def _json(self) -> dict[str, Any]:  # frozen: made once
        out = dict(self.other)
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name not in ("other", "given") and (
                    f.name in self.given or f.default is dataclasses.MISSING
                    or value != f.default):
                out[f.name] = value
        return out

    def replace(self, **changes: Any) -> SampleRecord:
        return dataclasses.replace(self, **changes)

    # the rules, written once
    @property
    def usable(self) -> bool:
        """A result: its loss never went NaN/inf (such a run is recorded, never used)."""
        return not self.numerical_fault

    @property
    def lossless(self) -> bool:
        """100% teacher-forced accuracy, in a run that is a result."""
        return self.best_accuracy >= 1.0 and self.usable

    @property
    def exact(self) -> bool:
        """Lossless in the strict sense: greedy decoding gives the text back token for token."""
        return self.lossless and bool(self.greedy_exact)

    def is_full(self, threshold: float = LOSSLESS_THRESHOLD) -> bool:
        """Whether the vector is "full": best accuracy at most the threshold (Table 1's pool)."""
        return self.best_accuracy <= threshold

    # read-only mapping over the JSON form
    def __getitem__(self, name: str) -> Any:
        return self._json[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._json)

    def __len__(self) -> int:
        return len(self._json)


class RecordStore:
    """Records indexed by key in memory. Appends go to `path`; reads take every
    `<stem>*.jsonl` beside it, so that ranks of a distributed run (each appending to its
    own `records.rank<r>.jsonl`) see each other's records, whatever their number."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._records: dict[str, SampleRecord] = {}
        self._damaged: set[str] = set()  # keys whose vectors were found damaged (warned once)
        self.refresh()

    def refresh(self) -> None:
        """Read what every writer has appended so far."""
        stem = self.path.name.split(".")[0]
        for file in sorted(self.path.parent.glob(f"{stem}*.jsonl")):
            for rec in read_records(file):
                self._records.setdefault(rec["key"], SampleRecord.from_json(rec))

    def __contains__(self, key: str) -> bool:
        return key in self._records

    def get(self, key: str) -> SampleRecord | None:
        return self._records.get(key)

    def __len__(self) -> int:
        return len(self._records)

    def vectors_path(self, key: str) -> Path:
        return self.path.parent / "vectors" / f"{key}.safetensors"

    def has_vectors(self, key: str) -> bool:
        """Whether the sample's vectors are there and whole. Damaged ones (a truncated or
        edited file) are treated like a damaged record: one warning, and the sample runs
        again, which writes them anew."""
        path = self.vectors_path(key)
        if not path.is_file():
            return False
        try:
            self.load_vectors(key)
        except CramError as exc:
            if key not in self._damaged:
                self._damaged.add(key)
                warnings.warn(f"{exc}, skipped: its sample runs again", stacklevel=2)
            return False
        return True

    def save_vectors(self, key: str, memory) -> None:
        """A sample's best [mem] vectors, written whole (temp file, then rename)."""
        from safetensors.torch import save_file

        with atomic_path(self.vectors_path(key)) as tmp:
            save_file({"memory": memory.detach().float().cpu().contiguous()}, str(tmp))
        self._damaged.discard(key)

    def load_vectors(self, key: str):
        """A sample's saved vectors (k, d); a file that is not whole is a CramError naming it."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        path = self.vectors_path(key)
        try:
            memory = load_file(str(path))["memory"]
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            why = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise CramError(f"{path} is damaged ({why})") from None
        if memory.dim() != 2:
            raise CramError(f"{path} is damaged (vectors of shape {tuple(memory.shape)})")
        return memory

    def append(self, record: SampleRecord | dict) -> None:
        if not isinstance(record, SampleRecord):
            if "key" not in record:
                raise ValueError("a record needs a 'key'")
            record = SampleRecord.from_json(record)
        line = json.dumps(record.to_json(), sort_keys=True, allow_nan=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(self.path.with_name(f".lock.{self.path.stem}")), \
                open(self.path, "a+b") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:  # a run killed mid-write may have left a partial line
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self._records[record.key] = record


def read_records(path: Path) -> Iterator[dict]:
    """Yield the whole, valid records of a file; warn about and skip damaged lines, and lines
    that are JSON but not a record (an edit, another tool): the sample runs again."""
    if path.is_dir():
        raise CramError(f"{path} is a directory, where the records file should be: move it "
                        "away, or pass another --output-path")
    if not path.is_file():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:  # a whole record that only lost its newline is still whole
                rec = json.loads(line)
            except json.JSONDecodeError:
                what = "damaged record" if line.endswith("\n") else "incomplete last line"
                warnings.warn(f"{path}:{number}: {what} skipped (a run stopped mid-write?)",
                              stacklevel=2)
                continue
            wrong = schemas.problem(rec, schemas.RECORD)
            if wrong:
                warnings.warn(f"{path}:{number}: not a record ({wrong}), skipped: its sample "
                              "runs again", stacklevel=2)
                continue
            yield rec
