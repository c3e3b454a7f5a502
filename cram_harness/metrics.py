"""The paper's metrics as pure functions over numbers and per-sample records (no torch).

Units: losses are mean cross-entropy in nats per predicted token; `length` is L, the number of
tokens in the crammed sequence (BOS included where the tokenizer adds one), of which L - 1 are
predicted. The gains multiply by L, not L - 1: that is how the paper's analysis computed them
(`(best_accuracy - original_accuracy) * max_length`), and numbers under its names must compare.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

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


def accuracy_table(records: Iterable[Mapping], field: str = "best_accuracy"
                   ) -> dict[int, list[float]]:
    """length -> the records' accuracies (`field`) at that length."""
    table: dict[int, list[float]] = defaultdict(list)
    for rec in records:
        table[int(rec["length"])].append(float(rec[field]))
    return dict(sorted(table.items()))


def metric_name(name: str, protocol: str) -> str:
    """The key a metric is reported under. The paper's names belong to the paper's protocol;
    under fast and max (warm-started climbs) the numbers are another statistic and say so:
    decoding_capacity -> progressive_capacity, token_gain -> progressive_token_gain."""
    if protocol == "paper":
        return name
    return f"progressive_{name.removeprefix('decoding_')}"


def usable(record: Mapping) -> bool:
    """A record that is a result: its loss never went NaN/inf (it is recorded, never used)."""
    return not record.get("numerical_fault")


def is_exact(record: Mapping) -> bool:
    """Lossless in the strict sense: 100% teacher-forced and greedy decoding gives the text
    back token for token (and the run was a result, not a NaN/inf)."""
    return (float(record["best_accuracy"]) >= 1.0 and bool(record.get("greedy_exact"))
            and not record.get("numerical_fault"))


def credit_prefixes(records: Iterable[Mapping]) -> list[dict]:
    """The records with each text credited, at every length up to the longest it decoded
    exactly, with a decoded prefix: a vector that decodes L tokens exactly decodes each of
    their prefixes, whatever the run at the shorter length found. For the climbing
    protocols, whose runs at one length start from another length's vector."""
    records = [dict(r) for r in records]
    longest: dict[str, int] = {}
    for rec in records:
        if "sample_id" in rec and is_exact(rec):
            longest[rec["sample_id"]] = max(longest.get(rec["sample_id"], 0), int(rec["length"]))
    for rec in records:
        if int(rec["length"]) <= longest.get(rec.get("sample_id"), 0):
            rec.update(best_accuracy=1.0, greedy_accuracy=1.0, greedy_exact=True)
    return records


def is_full(record: Mapping, threshold: float = LOSSLESS_THRESHOLD) -> bool:
    """Whether a sample's vector is "full": its best accuracy is at most the threshold."""
    return float(record["best_accuracy"]) <= threshold


def full_vectors_by_length(records: Iterable[Mapping], threshold: float = LOSSLESS_THRESHOLD
                           ) -> dict[str, int]:
    """length -> how many of the records there have a full vector (the gains' pool)."""
    counts: dict[int, int] = defaultdict(int)
    for rec in records:
        if is_full(rec, threshold):
            counts[int(rec["length"])] += 1
    return {str(length): n for length, n in sorted(counts.items())}


def full_vector_gains(
    records: Iterable[Mapping], threshold: float = LOSSLESS_THRESHOLD
) -> dict[str, MeanStd]:
    """Table 1's gains: mean +- std over samples whose vector is full (best acc <= threshold)."""
    full = [r for r in records if is_full(r, threshold)]
    return {
        "token_gain": mean_std(r["token_gain"] for r in full),
        "information_gain": mean_std(r["information_gain"] for r in full),
        "information_gain_bits": mean_std(r["information_gain_bits"] for r in full),
    }
