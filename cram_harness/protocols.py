"""The protocols, one object each: how a sweep walks its lengths, when a text stops, which
engine defaults apply, and whether its numbers are the paper's (a climb's are reported under
the metric table's climbing names, metrics.METRICS).

paper: every text at every length, each run from a fresh start (the paper's statistics).
fast: a text climbs to the next length only while it stays lossless, warm-started from its
  solution at the previous length; a text that stopped keeps its last accuracy for the
  longer lengths (a longer prefix is not easier).
max: climbs as fast does, while greedy decoding is exact, with a second start where a text
  loses a length, and the levers later work found (docs/concepts.md) unless the user set them.

The harness runs them, results/ names their numbers, cli/run.py offers `PROTOCOLS`' keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cram_harness.errors import CramError
from cram_harness.results.records import SampleRecord


@dataclass(frozen=True)
class Protocol:
    name: str
    help: str
    climbs: bool = False  # texts climb the lengths, warm-started; else every text every length
    climb_needs_exact: bool = False  # to climb, greedy decoding must give the text back
    lost_lengths_allowed: int = 0  # lengths a text may lose in a row and still climb
    second_start: bool = False  # a fresh start, with this seed offset, where a text lost
    # The lr relative to the spread of the model's embeddings (Adam moves each coordinate by
    # ~lr a step, so the paper's absolute 1e-2 is 7% of SmolLM2's std and 1% of Gemma-3's).
    lr_per_embedding_std: float | None = None
    engine_defaults: Mapping[str, Any] = field(default_factory=dict)  # the user's win

    def defaults(self, embedding_std: float) -> dict[str, Any]:
        """The engine options this protocol sets unless the user set them."""
        out = dict(self.engine_defaults)
        if self.lr_per_embedding_std is not None:
            out["lr"] = round(self.lr_per_embedding_std * embedding_std, 6)
        return out

    def wins(self, record: SampleRecord) -> bool:
        """Whether a text won its length and climbs on."""
        return record.exact if self.climb_needs_exact else record.lossless

    def stopped_accuracy(self, record: SampleRecord) -> float:
        """What a text that stopped climbing counts at the longer lengths: its best accuracy
        or, where that was 100% but greedy decoding missed, the share of the text greedy
        decoding got right before its first miss."""
        if record.best_accuracy >= 1.0 and not record.greedy_exact \
                and record.first_mismatch is not None:
            return record.first_mismatch / record.num_predicted
        return record.best_accuracy

    def credited(self, records: Iterable[SampleRecord]) -> list[SampleRecord]:
        """The records capacity is read from. A climb credits each text at every length up
        to the longest it decoded exactly (a vector that decodes L tokens decodes their
        prefixes, whatever the run at the shorter length found); the paper reads each run."""
        records = list(records)
        if not self.climbs:
            return records
        longest: dict[str, int] = {}
        for rec in records:
            if rec.sample_id is not None and rec.exact:
                longest[rec.sample_id] = max(longest.get(rec.sample_id, 0), rec.length)
        return [rec.replace(best_accuracy=1.0, greedy_accuracy=1.0, greedy_exact=True)
                if rec.length <= longest.get(rec.sample_id, 0) else rec for rec in records]


def better(new: SampleRecord, old: SampleRecord) -> bool:
    """Whether a second start's record beats the first's: exact first, then accuracy."""
    if new.exact != old.exact:
        return new.exact
    return new.best_accuracy > old.best_accuracy


SECOND_START_SEED_OFFSET = 1_000_003

PAPER = Protocol("paper", "every text at every length.")
FAST = Protocol("fast", "texts climb the lengths while lossless, warm-started from their "
                "shorter solution (far fewer steps).", climbs=True)
# A run from one init fails now and then where a fresh one succeeds (SmolLM2-135M: a novel
# text lost at 8 tokens and decoded at 24), so max gives every lost text a second start; and
# a text that lost a length still tries the next one (a vector that decodes a longer text
# decodes its prefixes too, so a lost length is often the optimizer's miss).
MAX = Protocol("max", "climbs while greedy decoding is exact, with a second start where a "
               "text loses a length, and later work's levers (lr scaled to the embeddings, "
               "logit margin 0.5) unless set.", climbs=True, climb_needs_exact=True,
               lost_lengths_allowed=1, second_start=True, lr_per_embedding_std=0.22,
               engine_defaults={"min_margin": 0.5, "temperature": 1.0})

PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (PAPER, FAST, MAX)}


def protocol_named(name: str) -> Protocol:
    """The protocol a user names; an unknown name is one line."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise CramError(f"unknown protocol {name!r}: use one of {', '.join(PROTOCOLS)}") from None


def protocol_of_file(name: Any) -> Protocol:
    """The protocol a results file names, as every reader takes it: none (a file from before
    protocols) is the paper's; a name this version does not know (a newer cram-harness's)
    climbs, since its numbers are not the paper's, and keeps its name."""
    if name is None:
        return PAPER
    return PROTOCOLS.get(name) or Protocol(str(name), "unknown to this version", climbs=True)
