"""What to expect before a text is crammed, from the paper's finding: a text decodes from the
[mem] vectors iff its own cross-entropy without them (nats) is below the information gain the
model's vectors reach, which is nearly constant per model whatever the text, and grows about
linearly with the number of vectors.

The gain a vector holds is, best first: measured on this model (a results file of an earlier
run), published for a model of this name, or a rough estimate from the model's width. The
forecast is a forecast: nothing is ever refused by it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from cram_harness.metrics import nats_to_bits

# Information gain of one vector (nats), mean over texts, as published. Kuratov et al. 2025,
# Table 1 (PG-19); Progressive Cramming 2026 (bits there), for the architectures and sizes of
# our offline aliases, whose weights are a dequantized GGUF of those checkpoints.
PUBLISHED_GAINS: dict[str, tuple[float, str]] = {
    "eleutherai/pythia-160m": (396.0, "Kuratov et al. 2025, Table 1"),
    "eleutherai/pythia-410m": (431.0, "Kuratov et al. 2025, Table 1"),
    "eleutherai/pythia-1.4b": (793.0, "Kuratov et al. 2025, Table 1"),
    "meta-llama/llama-3.2-1b": (2120.0, "Kuratov et al. 2025, Table 1"),
    "meta-llama/llama-3.2-3b": (3292.0, "Kuratov et al. 2025, Table 1"),
    "meta-llama/llama-3.1-8b": (4866.0, "Kuratov et al. 2025, Table 1"),
    "smollm2-135m": (168.0 * math.log(2), "Progressive Cramming 2026, SmolLM2-135M"),
    "huggingfacetb/smollm2-135m": (168.0 * math.log(2), "Progressive Cramming 2026"),
    "gemma3-270m": (392.0 * math.log(2), "Progressive Cramming 2026, Gemma-3-270M"),
    "google/gemma-3-270m": (392.0 * math.log(2), "Progressive Cramming 2026"),
}
# Nats per dimension of d_model: the lowest ratio published (SmolLM2-135M: ~116 nats at
# d 576; the paper's models 0.39-1.19), so that an unknown model is not promised too much.
GAIN_PER_DIMENSION = 0.2
# The key the results file keeps a task's information gain under (the paper protocol's).
GAIN_KEY = "information_gain,none"


@dataclass(frozen=True)
class Gain:
    """The information gain one vector of a model holds, and where the number comes from."""

    nats: float
    source: str


def published_gain(spec: str) -> Gain | None:
    """The published gain of a model of this spec's name (hf: prefix and revision ignored)."""
    name = spec.removeprefix("hf:").split("@")[0].strip("/").lower()
    found = PUBLISHED_GAINS.get(name)
    return Gain(found[0], f"published ({found[1]})") if found else None


def measured_gain(results: Iterable[dict]) -> Gain | None:
    """The newest information gain in these results files of one model (k = 1, the paper's
    protocol), with the file it comes from."""
    newest: tuple[float, float, str] | None = None
    for res in results:
        when = res.get("date") if isinstance(res.get("date"), (int, float)) else 0.0
        for task, values in (res.get("results") or {}).items():
            value = values.get(GAIN_KEY) if isinstance(values, dict) else None
            if isinstance(value, (int, float)) and math.isfinite(value) and value > 0 \
                    and (newest is None or when >= newest[0]):
                newest = (when, float(value),
                          f"measured ({res.get('results_file') or 'a results file'}, {task})")
    return Gain(newest[1], newest[2]) if newest else None


def estimated_gain(d_model: int) -> Gain:
    return Gain(GAIN_PER_DIMENSION * d_model,
                f"a rough estimate from d_model {d_model} ({GAIN_PER_DIMENSION} nats a "
                "dimension, the lowest published): measure it with `cram-eval --model SPEC "
                "--tasks info_gain_gutenberg`")


def model_gain(spec: str, d_model: int, results: Iterable[dict] = ()) -> Gain:
    """The best number there is: measured, else published, else estimated."""
    return measured_gain(results) or published_gain(spec) or estimated_gain(d_model)


@dataclass(frozen=True)
class Forecast:
    text_nats: float  # the text's cross-entropy without [mem], summed over its predicted tokens
    tokens: int
    gain: Gain
    n_mem: int

    @property
    def vectors_needed(self) -> int:
        return max(1, math.ceil(self.text_nats / self.gain.nats))

    @property
    def known(self) -> bool:
        """False where the model's own CE of the text is not a number (a broken model): the
        engine will say what went wrong, the forecast says nothing."""
        return math.isfinite(self.text_nats)

    @property
    def likely(self) -> bool:
        return self.vectors_needed <= self.n_mem

    def line(self, option: str = "--mem-tokens {k}") -> str:
        """The forecast in one line; `option` spells the setting to try (the API's
        `n_mem={k}`)."""
        k = self.n_mem
        verdict = (f"likely to decode from {k} vector{'s' if k > 1 else ''}" if self.likely
                   else f"unlikely to decode from {k} vector{'s' if k > 1 else ''}: try "
                        + option.format(k=self.vectors_needed))
        return (f"forecast: {verdict} (the text's {self.tokens} tokens hold "
                f"{self.text_nats:.0f} nats ({nats_to_bits(self.text_nats):.0f} bits) without "
                f"[mem]; a vector of this model holds about {self.gain.nats:.0f}, "
                f"{self.gain.source})")


def forecast(text_nats: float, tokens: int, gain: Gain, n_mem: int = 1) -> Forecast:
    return Forecast(text_nats=text_nats, tokens=tokens, gain=gain, n_mem=n_mem)


def text_nats(model: Any, token_ids: list[int]) -> float:
    """The text's cross-entropy without [mem] (nats), summed over the tokens after its seed:
    what the vectors must supply."""
    return texts_nats(model, [token_ids])[0]


def texts_nats(model: Any, token_lists: list[list[int]]) -> list[float]:
    from cram_harness.engine.estimate import cumulative_cross_entropy

    return [c[-1] if c else 0.0 for c in cumulative_cross_entropy(model, token_lists)]


def unlikely_texts(model: Any, spec: str, token_lists: list[list[int]],
                   n_mem: int) -> str | None:
    """One line on the texts unlikely to decode from `n_mem` vectors of this model, by the
    published or estimated gain (None: all are likely)."""
    d_model = model.get_input_embeddings().weight.shape[1]
    gain = published_gain(spec) or estimated_gain(d_model)
    found = [forecast(nats, len(t), gain, n_mem)
             for nats, t in zip(texts_nats(model, token_lists), token_lists)]
    found = [f for f in found if f.known]
    unlikely = [f for f in found if not f.likely]
    if not unlikely:
        return None
    if len(found) == 1:
        return found[0].line(option="n_mem={k}")
    need = max(f.vectors_needed for f in unlikely)
    return (f"forecast: {len(unlikely)} of {len(found)} texts are unlikely to decode from "
            f"{n_mem} vector{'s' if n_mem > 1 else ''} (the longest needs about {need}: try "
            f"n_mem={need}); a vector of this model holds about {gain.nats:.0f} nats, "
            f"{gain.source}")
