"""The paper's metrics as pure functions over numbers and per-sample records (no torch).

Units: losses are mean cross-entropy in nats per predicted token; `n` is the number of
predicted tokens (the text's tokens after the seed token, or all of them after a BOS).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

LOSSLESS_THRESHOLD = 0.99  # the paper's accuracy threshold for capacity and "full" vectors
FLOAT_BITS = 16  # bits per float in Eq. 1


def token_gain(best_accuracy: float, base_accuracy: float, n: int) -> float:
    """Tokens decoded thanks to the [mem] vectors: (best_acc - base_acc) * n."""
    return (best_accuracy - base_accuracy) * n


def information_gain(base_loss: float, best_loss: float, n: int) -> float:
    """Cross-entropy removed by the [mem] vectors, in nats: (base_loss - best_loss) * n."""
    return (base_loss - best_loss) * n


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
    std: float  # sample standard deviation (ddof=1); 0 for a single value
    stderr: float
    n: int


def mean_std(values: Iterable[float]) -> MeanStd:
    vals = [float(v) for v in values]
    n = len(vals)
    if n == 0:
        return MeanStd(math.nan, math.nan, math.nan, 0)
    mean = math.fsum(vals) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
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


def accuracy_table(records: Iterable[Mapping]) -> dict[int, list[float]]:
    """length -> best accuracies of the records measured at that length."""
    table: dict[int, list[float]] = defaultdict(list)
    for rec in records:
        table[int(rec["length"])].append(float(rec["best_accuracy"]))
    return dict(sorted(table.items()))


def full_vector_gains(
    records: Iterable[Mapping], threshold: float = LOSSLESS_THRESHOLD
) -> dict[str, MeanStd]:
    """Table 1's gains: mean +- std over samples whose vector is full (best acc <= threshold)."""
    full = [r for r in records if float(r["best_accuracy"]) <= threshold]
    return {
        "token_gain": mean_std(r["token_gain"] for r in full),
        "information_gain": mean_std(r["information_gain"] for r in full),
        "information_gain_bits": mean_std(r["information_gain_bits"] for r in full),
    }
