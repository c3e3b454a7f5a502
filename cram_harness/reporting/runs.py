"""Results files as runs to draw: each with a legend label that keeps runs of one model
with different settings apart, and the sample records written beside it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cram_harness.protocols import protocol_of_file
from cram_harness.results.records import SampleRecord

SETTING_KEYS = ("protocol", "lr", "max_steps", "min_margin", "temperature", "subspace", "dtype",
                "autocast")


@dataclass
class Run:
    """One results file: its dict, model, legend label and per-sample records."""

    results: dict
    model: str
    label: str = ""
    samples: list[SampleRecord] = field(default_factory=list)

    def setting(self, key: str) -> object:
        """A setting: the results config's value, else (None, "auto") the records' own."""
        value = self.results.get("config", {}).get(key)
        if value is None or value == "auto":
            seen = Counter(json.dumps(s.get("config", {}).get(key)) for s in self.samples)
            found = json.loads(seen.most_common(1)[0][0]) if seen else None
            value = value if found is None else found
        return value

    def tasks(self, *kinds: str) -> Iterator[tuple[str, dict, str]]:
        """(task name, metrics, dataset) of the run's tasks of these kinds."""
        for name, values in self.results.get("results", {}).items():
            cfg = self.results.get("configs", {}).get(name, {})
            kind = cfg.get("kind") or name.rsplit("_", 1)[0]
            if kind in kinds:
                yield name, values, str(cfg.get("dataset") or name.rsplit("_", 1)[-1])

    def analyses(self, kind: str) -> list[dict]:
        """The run's analyses of this kind (told by "kind", else by their keys)."""
        out = []
        for name, a in (self.results.get("analyses") or {}).items():
            if isinstance(a, dict) and kind == a.get("kind", (
                    "similarity" if "intra_cosine" in a else "interpolation")):
                cfg = self.results.get("configs", {}).get(name, {})
                out.append({"dataset": cfg.get("dataset") or name.rsplit("_", 1)[-1], **a})
        return out


def load_runs(results: list[dict]) -> list[Run]:
    """Runs of results dicts. Runs of one model whose settings differ get the differing
    settings in their label, so that legends keep them apart; same labels get the file's time."""
    runs = [Run(r, str(r.get("model_name") or r.get("config", {}).get("model") or "?"),
                samples=read_samples(r)) for r in results]
    by_model: dict[str, list[Run]] = {}
    for run in runs:
        by_model.setdefault(run.model, []).append(run)
    for group in by_model.values():
        differ = [k for k in SETTING_KEYS if len({repr(r.setting(k)) for r in group}) > 1]
        for run in group:
            # a climbing protocol's numbers are never the paper's: their label says so
            climbs = protocol_of_file(run.setting("protocol")).climbs
            named = differ if not climbs or "protocol" in differ \
                else ["protocol", *differ]
            extra = ", ".join(f"{k}={_text(run.setting(k))}" for k in named)
            run.label = f"{run.model} ({extra})" if extra else run.model
    counts = Counter(run.label for run in runs)
    for i, run in enumerate(runs):
        if counts[run.label] > 1:
            stem = Path(str(run.results.get("results_file", f"#{i}"))).stem
            run.label += f" [{stem.removeprefix('results_')}]"
    return runs


def read_samples(results: dict) -> list[SampleRecord]:
    """The sample records beside a results file (samples_<task>_<time>.jsonl), one per key;
    a line that is not a record is skipped."""
    if not results.get("results_file"):
        return []
    path = Path(results["results_file"])
    stamp = path.stem.removeprefix("results_")
    seen: dict[str, SampleRecord] = {}
    for f in sorted(path.parent.glob(f"samples_*_{stamp}.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            try:
                rec = SampleRecord.from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError, AttributeError):
                continue
            seen.setdefault(rec.key or line, rec)
    return list(seen.values())


def _text(value: object) -> str:
    return "default" if value is None else str(value)

