"""One finished sample as the records file holds it, with the rules every reader shares.

A record is a JSON line. `SampleRecord` reads the fields results are made of by name and
keeps the line's other fields (settings, timings, the vectors' seed token) as they were, so
`to_json()` writes back what `from_json()` read: records of older versions still load and
resume. It reads like a mapping too (`rec["length"]`), for the code that serializes it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

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
