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


def accuracy_table(pairs: Iterable[tuple[int, float]]) -> dict[int, list[float]]:
    """length -> the accuracies at that length, from (length, accuracy) pairs."""
    table: dict[int, list[float]] = defaultdict(list)
    for length, accuracy in pairs:
        table[int(length)].append(float(accuracy))
    return dict(sorted(table.items()))


def full_vector_gains(records: Iterable, threshold: float = LOSSLESS_THRESHOLD
                      ) -> dict[str, MeanStd]:
    """Table 1's gains: mean +- std over the samples whose vector is full (best accuracy at
    most the threshold), from `SampleRecord`s."""
    full = [r for r in records if r.is_full(threshold)]
    return {name: mean_std(getattr(r, name) for r in full)
            for name in ("token_gain", "information_gain", "information_gain_bits")}
