"""The paper's metrics as pure functions over numbers and per-sample records (no torch).

Units: losses are mean cross-entropy in nats per predicted token; `length` is L, the number of
tokens in the crammed sequence (BOS included where the tokenizer adds one), of which L - 1 are
predicted. The gains multiply by L, not L - 1: that is how the paper's analysis computed them
(`(best_accuracy - original_accuracy) * max_length`), and numbers under its names must compare.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOSSLESS_THRESHOLD = 0.99  # the paper's accuracy threshold for capacity and "full" vectors
FLOAT_BITS = 16  # bits per float in Eq. 1


def token_gain(best_accuracy: float, base_accuracy: float, length: int) -> float:
    """Tokens decoded thanks to the [mem] vectors: (best_acc - base_acc) * L."""
    return (best_accuracy - base_accuracy) * length


def information_gain(base_loss: float, min_loss: float, length: int) -> float:
    """Cross-entropy removed by the [mem] vectors, in nats: (base_loss - min_loss) * L, where
    min_loss is the lowest CE of the whole run (the paper's `min(losses[:5000])`), not the CE
    of the best-accuracy state."""
    return (base_loss - min_loss) * length


def decoded_tokens(best_accuracy: float, length: int) -> float:
    """Tokens a sample's vector decodes teacher-forced: best_acc * L, L counted as the gains
    count it, so that a text decoded whole counts its length (the capacity's unit)."""
    return best_accuracy * length


def nats_to_bits(nats: float) -> float:
    return nats / math.log(2)


def theoretical_capacity(d_model: int, vocab_size: int, bits: int = FLOAT_BITS) -> float:
    """Eq. 1: tokens a d-dimensional vector of `bits`-bit floats could index, d*b/log2|V|."""
    return d_model * bits / math.log2(vocab_size)


def capacity_utilization(mean_token_gain: float, eq1_capacity: float) -> float:
    return mean_token_gain / eq1_capacity


@dataclass(frozen=True)
class MeanStd:
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN for one value, as pandas' (the paper's)
    stderr: float
    n: int


def mean_std(values: Iterable[float]) -> MeanStd:
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return MeanStd(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else math.nan
    return MeanStd(mean, std, std / math.sqrt(n), n)


def decoding_capacity(
    accuracy_by_length: Mapping[int, Sequence[float]], threshold: float = LOSSLESS_THRESHOLD
) -> int | None:
    """Largest tested length whose mean best accuracy over samples is >= threshold
    (None if no length reaches it)."""
    passing = [
        length for length, accs in accuracy_by_length.items()
        if accs and math.fsum(accs) / len(accs) >= threshold
    ]
    return max(passing) if passing else None


def accuracy_table(pairs: Iterable[tuple[int, float]]) -> dict[int, list[float]]:
    """length -> the accuracies at that length, from (length, accuracy) pairs."""
    table: dict[int, list[float]] = defaultdict(list)
    for length, accuracy in pairs:
        table[int(length)].append(float(accuracy))
    return dict(sorted(table.items()))



# --- the metric table ---------------------------------------------------------------------
# Every number a results file reports, once: how it is computed from a task's records, how
# its samples are aggregated, which way is better, which task kinds report it, what the paper
# calls it, its unit. results/ writes it, reporting/ and the figures read it, the lm-eval
# bridge's metric list is made of it. docs/architecture.md shows how to add one.

FILTER = "none"  # lm-eval's filter name: a results file's keys are "metric,none"
ABSENT = object()  # a metric's function returns it where the task has nothing to report


def result_key(name: str) -> str:
    """The key of a metric in a results file's `results`: lm-eval's "metric,filter"."""
    return f"{name},{FILTER}"


@dataclass(frozen=True)
class Reading:
    """What a task's metrics are computed from: its usable records at one number of [mem]
    vectors and the threshold it counts as decoded. `credited` are the records capacity is
    read from (a climbing protocol credits each text at the lengths below its longest exact
    one, and carries the texts that stopped: `protocols.Protocol.credited`); `analysis` is
    what an analysis or estimate task computed after its sweeps."""

    records: Sequence = ()
    credited: Sequence = ()
    threshold: float = LOSSLESS_THRESHOLD
    eq1_capacity: float = math.nan
    analysis: Mapping = field(default_factory=dict)

    @property
    def full(self) -> list:
        """The records whose vector is full: Table 1's pool."""
        return [r for r in self.records if r.is_full(self.threshold)]


# How a metric's samples become the numbers written, and the keys it writes beside its own
# ("name_stderr", "name_std"): a statistic with no stderr of its own writes "N/A", as lm-eval
# does; a ratio of two aggregates writes none.
AGGREGATIONS = {
    "capacity": "longest length at mean accuracy >= threshold; stderr N/A",
    "count": "count; stderr N/A",
    "min": "smallest; stderr N/A",
    "mean_std": "mean, stderr, sample std",
    "mean": "mean, stderr",
    "ratio": "one aggregate over another; no stderr",
}


@dataclass(frozen=True)
class Metric:
    """One number a results file reports, declared once: what the table says of it."""

    name: str  # its key under the paper's protocol
    compute: Callable[[Reading], Any]  # a number, None (nothing to count), MeanStd or ABSENT
    aggregation: str  # a key of AGGREGATIONS
    higher_is_better: bool | None  # None: it describes, neither better nor worse
    kinds: tuple[str, ...]  # the task kinds that report it
    unit: str
    paper: str  # what the paper (or its figure) calls it
    climbing_name: str | None = None  # its key under a climbing protocol (fast, max): another
    # statistic than the paper's, so never under the paper's name
    # lm-eval's tasks (integrations/lm_eval/bridge.py): how lm-eval aggregates it over the
    # documents (None: they do not report it), and the record field each text gives
    lm_eval: str | None = None
    sample: str | None = None

    def key(self, climbs: bool = False, suffix: str = "") -> str:
        """Its name in a results file, under a protocol that climbs or not (mem_scaling adds
        a suffix per number of vectors: decoding_capacity_k2)."""
        return ((self.climbing_name or self.name) if climbs else self.name) + suffix

    def names(self) -> list[str]:
        """Every name it is reported under: the paper's first."""
        return list(dict.fromkeys((self.name, self.climbing_name or self.name)))

    def entries(self, reading: Reading, climbs: bool = False, suffix: str = "") -> dict:
        """Its "metric,none" entries for a results file (none where it is ABSENT)."""
        value = self.compute(reading)
        if value is ABSENT:
            return {}
        key = self.key(climbs, suffix)
        if self.aggregation == "mean_std":
            return {result_key(key): _finite_or_none(value.mean),
                    result_key(f"{key}_stderr"): _finite_or_none(value.stderr),
                    result_key(f"{key}_std"): _finite_or_none(value.std)}
        if self.aggregation == "mean":
            return {result_key(key): value.mean, result_key(f"{key}_stderr"): value.stderr}
        if self.aggregation == "ratio":
            return {result_key(key): _finite_or_none(value)}
        return {result_key(key): value, result_key(f"{key}_stderr"): "N/A"}

    def directions(self, climbs: bool = False, suffix: str = "") -> dict[str, bool | None]:
        """Its entries in a results file's `higher_is_better` (a spread is better smaller)."""
        key = self.key(climbs, suffix)
        out = {key: self.higher_is_better}
        if self.aggregation == "mean_std":  # a spread is better small, unless nothing is
            out[f"{key}_std"] = None if self.higher_is_better is None else False
        return out


def _finite_or_none(x: float) -> float | None:
    return None if x != x else x  # NaN (no samples) -> null


def _capacity_of(accuracy: str) -> Callable[[Reading], int | None]:
    def compute(reading: Reading) -> int | None:
        table = accuracy_table((r.length, getattr(r, accuracy)) for r in reading.credited)
        return decoding_capacity(table, reading.threshold)
    return compute


def _full_vector_mean(name: str) -> Callable[[Reading], MeanStd]:
    return lambda reading: mean_std(getattr(r, name) for r in reading.full)


def _utilization(reading: Reading) -> float:
    return capacity_utilization(_full_vector_mean("token_gain")(reading).mean,
                                reading.eq1_capacity)


def _record_mean(name: str) -> Callable[[Reading], MeanStd]:
    return lambda reading: mean_std(getattr(r, name) for r in reading.records)


def _analysis_mean(key: str) -> Callable[[Reading], MeanStd | object]:
    """Fig. 7's cosines, pooled over the pairs of solutions (absent where nothing ran)."""
    return lambda reading: mean_std(reading.analysis[key]) if key in reading.analysis \
        else ABSENT


def _midpoints(reading: Reading) -> list[float]:
    """Fig. 8: each curve's accuracy half-way between two solutions of the same text."""
    mid = len(reading.analysis.get("thetas") or []) // 2
    return [curve[mid] for curve in reading.analysis.get("curves") or []]


def _estimated_texts(reading: Reading) -> list[dict]:
    return reading.analysis.get("texts") or []


def _measured_pairs(reading: Reading) -> list[tuple[int, int]]:
    """(predicted, measured) of the texts whose capacity was also measured."""
    return [(t["predicted"], t["measured"]) for t in _estimated_texts(reading)
            if t["measured"] is not None]


def _estimate_gain(reading: Reading) -> MeanStd | object:
    if not _estimated_texts(reading):
        return ABSENT
    a = reading.analysis
    return MeanStd(a["information_gain"], math.nan, a["information_gain_stderr"],
                   a.get("n_full_vectors", 0))


def _predicted_capacity(reading: Reading) -> int | None:
    """The shortest text's predicted prefix, as capacity is the length every text decodes."""
    texts = _estimated_texts(reading)
    return min(t["predicted"] for t in texts) if texts else None


def _measured_capacity(reading: Reading) -> int | object:
    pairs = _measured_pairs(reading)
    return min(m for _, m in pairs) if pairs else ABSENT


def _prediction_error(reading: Reading) -> MeanStd | object:
    pairs = _measured_pairs(reading)
    return mean_std(abs(p - m) for p, m in pairs) if pairs else ABSENT


def _worst_midpoint(reading: Reading) -> float | object:
    middle = _midpoints(reading)
    return min(middle) if middle else ABSENT


def _midpoint_mean(reading: Reading) -> MeanStd | object:
    middle = _midpoints(reading)
    return mean_std(middle) if middle else ABSENT


CAPACITY_KINDS = ("capacity", "mem_scaling")
GAIN_KINDS = ("token_gain", "info_gain")
# several restarts per text, their vectors kept: the solutions are compared after the sweeps
ANALYSIS_KINDS = ("similarity", "interpolation")

# In the order a task's entries are written; each is
# Metric(name, compute, aggregation, higher_is_better, kinds, unit, paper, ...).
METRICS: tuple[Metric, ...] = (
    Metric("decoding_capacity", _capacity_of("best_accuracy"), "capacity", True, CAPACITY_KINDS,
           "tokens", "decoding capacity", climbing_name="progressive_capacity",
           lm_eval="decoding_capacity", sample="best_accuracy"),
    # the same rule with each text's greedy-decoded accuracy: decoding, not scoring
    Metric("greedy_capacity", _capacity_of("greedy_accuracy"), "capacity", True, CAPACITY_KINDS,
           "tokens", "greedy capacity (beyond the paper)",
           climbing_name="progressive_greedy_capacity", lm_eval="decoding_capacity",
           sample="greedy_accuracy"),
    # how many vectors Table 1's gains are made of (results add at which lengths)
    Metric("n_full_vectors", lambda r: len(r.full), "count", True, GAIN_KINDS, "vectors",
           "full vectors (best accuracy <= 0.99)", lm_eval="count"),
    Metric("token_gain", _full_vector_mean("token_gain"), "mean_std", True, ("token_gain",),
           "tokens", "token gain", climbing_name="progressive_token_gain",
           lm_eval="full_vector_mean", sample="token_gain"),
    Metric("information_gain", _full_vector_mean("information_gain"), "mean_std", True,
           ("info_gain",), "nats", "information gain",
           climbing_name="progressive_information_gain", lm_eval="full_vector_mean",
           sample="information_gain"),
    Metric("information_gain_bits", _full_vector_mean("information_gain_bits"), "mean_std",
           True, ("info_gain",), "bits", "information gain",
           climbing_name="progressive_information_gain_bits", lm_eval="full_vector_mean",
           sample="information_gain_bits"),
    Metric("capacity_utilization", _utilization, "ratio", True, ("token_gain",), "share",
           "capacity utilization (token gain / Eq. 1)",
           climbing_name="progressive_capacity_utilization"),
    # the information gain at the estimate's probe length alone, the prediction's input
    Metric("information_gain", _estimate_gain, "mean", True, ("capacity_estimate",), "nats",
           "information gain at the probe length"),
    Metric("predicted_capacity", _predicted_capacity, "min", True, ("capacity_estimate",),
           "tokens", "capacity predicted from CE (the paper's finding)"),
    Metric("measured_capacity", _measured_capacity, "min", True, ("capacity_estimate",),
           "tokens", "capacity measured on the same texts"),
    Metric("prediction_error_tokens", _prediction_error, "mean_std", False,
           ("capacity_estimate",), "tokens", "|predicted - measured| per text"),
    # Figs. 7 and 8 describe the solutions' landscape: neither direction is better
    Metric("intra_cosine", _analysis_mean("intra_cosine"), "mean_std", None, ("similarity",),
           "cosine", "cosine between solutions of the same text (Fig. 7)"),
    Metric("inter_cosine", _analysis_mean("inter_cosine"), "mean_std", None, ("similarity",),
           "cosine", "cosine between solutions of different texts (Fig. 7)"),
    Metric("midpoint_accuracy", _midpoint_mean, "mean_std", None, ("interpolation",),
           "accuracy", "accuracy half-way between two solutions (Fig. 8)"),
    Metric("worst_midpoint_accuracy", _worst_midpoint, "min", None, ("interpolation",),
           "accuracy", "the lowest of them (Fig. 8)"),
    # per text, over every length: lm-eval's tasks report them; cram-eval's records hold them
    Metric("best_accuracy", _record_mean("best_accuracy"), "mean", True, (), "accuracy",
           "teacher-forced accuracy", lm_eval="mean", sample="best_accuracy"),
    Metric("greedy_exact", _record_mean("greedy_exact"), "mean", True, (), "share",
           "greedy decoding gives the text back", lm_eval="mean", sample="greedy_exact"),
)


def metrics_of(kind: str) -> list[Metric]:
    """The metrics a task of this kind reports, in the order they are written."""
    return [m for m in METRICS if kind in m.kinds]


def metric(name: str) -> Metric:
    """A metric by its paper name (the first entry of that name)."""
    return next(m for m in METRICS if m.name == name)


def kinds_reporting(*names: str) -> tuple[str, ...]:
    """The task kinds that report any of these metrics, in the order named."""
    return tuple(dict.fromkeys(k for n in names for m in METRICS if m.name == n
                               for k in m.kinds))


def reported_names() -> set[str]:
    """Every metric name a results file may hold (the paper's and the climbs')."""
    return {n for m in METRICS for n in m.names()}
