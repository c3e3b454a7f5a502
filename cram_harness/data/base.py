"""What every data source gives: samples with stable ids, and a description for results."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Protocol, runtime_checkable

from cram_harness.errors import CramError


@dataclass(frozen=True)
class SourceText:
    """One sample: a stable id (for records, caches and resume) and its text."""

    id: str
    text: str


@runtime_checkable
class DataSource(Protocol):
    """What tasks read texts from; `describe()` goes into results so they say what was used."""

    name: str

    def texts(self, limit: int | None, seed: int) -> list[SourceText]: ...

    def describe(self) -> dict: ...


def _take(samples: Iterator[SourceText], limit: int | None) -> list[SourceText]:
    if limit is not None and limit < 0:
        raise CramError(f"limit must be >= 0 or None, got {limit}")
    return list(islice(samples, limit))


class StreamedSource:
    """A source that yields its texts one at a time (`_iter`): `texts` takes the first
    `limit`, so the first n texts never change with the limit and nothing past it is read."""

    name: str

    def _iter(self, seed: int) -> Iterator[SourceText]:
        raise NotImplementedError

    def texts(self, limit: int | None = None, seed: int = 0) -> list[SourceText]:
        return _take(self._iter(seed), limit)


def _line(exc: BaseException) -> str:
    """The first line of an error, so a CramError stays one line."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _missing_column(where: str, column: str, columns: list) -> CramError:
    have = ", ".join(map(str, columns)) or "none"
    return CramError(f"{where} has no column {column!r}; its columns are: {have}")


EXTENSIONS = (".txt", ".jsonl", ".csv", ".parquet")
