"""lm-eval integration (lm-eval >= 0.4.12, < 0.5): our tasks inside `lm_eval`, and
[mem]-prefixed models on lm-eval's own tasks.

lm-eval dispatches each request to the model method named by its request type. Our task
class (`CramTask`) emits requests of type `cram`; our model type (`--model cram`, a subclass
of lm-eval's HFLM) serves them by cramming the text and returning its per-sample record,
and serves lm-eval's standard request types like HFLM, with an optional [mem] prefix
(`mem=<adapter dir>`). The task YAML lives in `plugins/lm_eval/` (shipped in the package as
`cram_harness/lm_eval_tasks`); the documents come from our own task registry.

Importing this module registers the model type `cram`.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from cram_harness.errors import CramError

SUPPORTED = SpecifierSet(">=0.4.12,<0.5")


def check_lm_eval_version(found: str | None = None) -> None:
    found = found or version("lm_eval")
    if Version(found) not in SUPPORTED:
        raise CramError(f"lm-eval {found} is not supported: cram-harness's lm-eval plugin needs "
                        "lm-eval >= 0.4.12, < 0.5 (`pip install 'lm-eval>=0.4.12,<0.5'`)")


check_lm_eval_version()

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.registry import MODEL_REGISTRY, register_model  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from cram_harness import metrics  # noqa: E402
from cram_harness.results.records import SampleRecord  # noqa: E402


def task_dir() -> Path:
    """The lm-eval task YAML: in the wheel, or in a checkout's plugins/lm_eval."""
    here = Path(__file__).resolve().parents[2]  # the package: cram_harness/
    for candidate in (here / "lm_eval_tasks", here.parent / "plugins" / "lm_eval"):
        if candidate.is_dir():
            return candidate
    raise CramError("cram-harness's lm-eval task files are missing: reinstall cram-harness")


def load_docs(cram_task: str, lengths: list[int] | None = None, num_samples: int | None = None,
              seed: int = 0, data_files: str | None = None, **_model_args: Any) -> dict:
    """One document per text of one of our tasks, as lm-eval's `test` split; each document
    asks for every length of the task (so `--limit N` takes N texts, at all lengths), or for
    its one drawn length where the task samples lengths as the paper did for random texts.
    lm-eval passes the task's metadata merged with --metadata and --model_args."""
    import datasets

    from cram_harness.harness.registry import make_source, resolve_tasks

    (task,) = resolve_tasks([cram_task])
    source = {"kind": "local", "path": data_files} if data_files else task.source
    texts = make_source(source).texts(limit=num_samples or task.num_samples, seed=int(seed))
    grid = sorted(int(n) for n in (lengths or task.lengths))
    # drawn lengths: up to the longest length, or what the model's context holds (CramLM)
    rows = [{"text_id": t.id, "text": t.text, "n_mem": int(task.mem_tokens[0]),
             "lengths": grid[-1:] if task.sampling == "uniform" else grid,
             "seed": int(seed) if task.sampling == "uniform" else None}
            for t in texts]
    return {"test": datasets.Dataset.from_list(rows)}


class CramTask(ConfigurableTask):
    """Emits one `cram` request per length of a document; lm-eval sends them to `CramLM.cram`."""

    OUTPUT_TYPE = "cram"

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        config["output_type"] = None  # lm-eval checks only its own four types when set
        config["metric_list"] = config.get("metric_list") or metric_list()
        super().__init__(config=config)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> list[Instance]:
        for unused in ("apply_chat_template", "chat_template"):
            kwargs.pop(unused, None)
        return [Instance(request_type="cram", doc=doc, idx=i, **kwargs, arguments=(
                    doc["text"], {"length": length, "n_mem": doc["n_mem"],
                                  "draw": None if doc["seed"] is None else
                                  (doc["seed"], doc["text_id"])}))
                for i, length in enumerate(doc["lengths"])]


def lm_eval_metrics() -> list[metrics.Metric]:
    """The metric table's entries that lm-eval's tasks report."""
    return [m for m in metrics.METRICS if m.lm_eval]


def metric_list() -> list[dict]:
    """Our tasks' `metric_list`, from the metric table: each metric with lm-eval's
    aggregation over the documents and its direction; a mean over full vectors also gives
    its sample std (`token_gain_std`), which is better small."""
    out = []
    for m in lm_eval_metrics():
        how = AGGREGATIONS[m.lm_eval]
        out.append({"metric": m.name, "aggregation": how, "higher_is_better": m.higher_is_better})
        if how is full_vector_mean:
            out.append({"metric": f"{m.name}_std", "aggregation": full_vector_std,
                        "higher_is_better": False})
    return out


def process_results(doc: dict, results: list[str]) -> dict:
    """Per-document items of each metric over the document's lengths, which the metric's
    aggregation pools over documents. A text shorter than a length is not run there, and a
    run whose loss went NaN/inf is no result (as in cram-eval)."""
    recs = [SampleRecord.from_json(line) for line in map(json.loads, results)
            if not line.get("not_run")]
    recs = [rec for rec in recs if rec.usable]
    full = [rec for rec in recs if rec.is_full()]
    out: dict[str, Any] = {}
    for m in lm_eval_metrics():
        if m.lm_eval == "decoding_capacity":
            out[m.name] = [(rec.length, getattr(rec, m.sample)) for rec in recs]
        elif m.lm_eval == "count":
            out[m.name] = len(full)
        elif m.lm_eval == "full_vector_mean":  # the mean and the std pool one list
            out[m.name] = out[f"{m.name}_std"] = [getattr(rec, m.sample) for rec in full]
        elif recs:  # mean: of the document's lengths, then lm-eval's mean over documents
            out[m.name] = sum(getattr(rec, m.sample) for rec in recs) / len(recs)
    return out


def decoding_capacity(items: list[list[tuple[int, float]]]) -> int | None:
    """The longest length whose mean accuracy over its texts is >= 0.99 (None if none is)."""
    table = metrics.accuracy_table(pair for doc in items for pair in doc)
    return metrics.decoding_capacity(table)


def full_vector_mean(items: list[list[float]]) -> float | None:
    """Table 1's mean over every full vector of every document (not a mean of means)."""
    values = [v for doc in items for v in doc]
    return metrics.mean_std(values).mean if values else None


def full_vector_std(items: list[list[float]]) -> float | None:
    """Table 1's sample std over the same pool (None below two vectors)."""
    std = metrics.mean_std(v for doc in items for v in doc).std
    return None if std != std else std


def count(items: list[int]) -> int:
    return sum(items)


# the metric table's `lm_eval` aggregations: ours, or lm-eval's own by name
AGGREGATIONS: dict[str, Any] = {"decoding_capacity": decoding_capacity, "count": count,
                                "full_vector_mean": full_vector_mean, "mean": "mean"}


@register_model("cram")
class CramLM(HFLM):
    """HFLM over any cram-harness model spec (GGUF aliases too), optionally with a [mem]
    prefix from an adapter (`mem=DIR`), that also serves `cram` requests. The engine's
    settings are cram-eval's (`EngineSettings`: seed, max_steps, lr, min_margin, ...)."""

    def __init__(self, pretrained: str | None = None, mem: str | None = None,
                 device: str | None = None,
                 dtype: str = "auto", cram_batch_size: int = 8, revision: str | None = None,
                 trust_remote_code: bool = False, **kwargs: Any) -> None:
        import torch
        from lm_eval.utils import handle_arg_string

        from cram_harness.harness.settings import EngineSettings
        from cram_harness.integrations.lm_eval.spellings import is_true
        from cram_harness.models.load import hub_spec, load_model
        from cram_harness.validation import BATCH, check_value, keyword

        if not pretrained:
            raise CramError("the cram model needs pretrained=SPEC in its model_args (an alias, "
                            "a directory, gguf:FILE or a Hub id)")
        cram_batch_size = handle_arg_string(cram_batch_size) \
            if isinstance(cram_batch_size, str) else cram_batch_size
        check_value("cram_batch_size", cram_batch_size, BATCH, keyword)
        # before any work: a bad setting is one line naming it as the user spelled it (a
        # model_args dict may hold strings, which lm-eval's own parser would have converted)
        self.engine = EngineSettings(**{
            name: handle_arg_string(v) if isinstance(v := kwargs.pop(name), str) else v
            for name in list(kwargs) if name in EngineSettings.__dataclass_fields__})
        self.engine.check(spelling=keyword)
        if device is None or (device.startswith("cuda") and not torch.cuda.is_available()):
            device = "auto"  # lm-eval's CLI defaults to cuda:0
        spec = hub_spec(str(pretrained), revision)
        model, tokenizer = load_model(spec, device=device, dtype=str(dtype),
                                      trust_remote_code=is_true(trust_remote_code))
        self.base_model = model
        if mem:
            model = _with_mem_prefix(model, str(mem))
        with _without_log_line(HFLM_LOGGER, NOT_A_STR):  # a loaded model is our design
            super().__init__(pretrained=model, tokenizer=tokenizer, **kwargs)
        self.spec = spec
        self.cram_batch_size = int(cram_batch_size)

    def cram(self, requests: list[Instance]) -> list[str]:
        """Cram each request's text at its length (drawn, up to what fits, where the task
        samples lengths); one batched run per (length, k). A text shorter than its length,
        or a length past the context, is answered {"not_run": why} and not run."""
        from cram_harness.engine.schedule import cram_token_ids
        from cram_harness.harness.plan import drawn_length
        from cram_harness.models.tokens import context_length, encode_text

        context = context_length(self.base_model)
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            opts = req.args[1]
            length, n_mem = opts["length"], opts["n_mem"]
            if opts.get("draw"):  # the paper's random texts: a length from [2, L]
                fits = length if context is None else min(length, context - n_mem)
                length = drawn_length(*opts["draw"], fits)
            groups[(length, n_mem)].append(i)
        out: list[str] = [""] * len(requests)
        for (length, n_mem), idx in groups.items():
            if context is not None and length + n_mem > context:
                why = f"{length} tokens + {n_mem} [mem] do not fit in the context of {context}"
                for i in idx:
                    out[i] = json.dumps({"not_run": why, "length": length, "n_mem": n_mem})
                continue
            tokens = {i: encode_text(self.tokenizer, requests[i].args[0], length) for i in idx}
            run = [i for i in idx if len(tokens[i]) == length]
            for i in set(idx) - set(run):
                out[i] = json.dumps({"not_run": "the text is shorter", "length": length,
                                     "n_mem": n_mem})
            if not run:
                continue
            config = self.engine.config(self.base_model, n_mem)
            with _StepBar(f"cram L={length}", len(run), config.max_steps) as bar:
                results = cram_token_ids(self.base_model, [tokens[i] for i in run], config,
                                         batch_size=self.cram_batch_size, max_tokens=length,
                                         on_step=bar.step)
            for i, res in zip(run, results):
                out[i] = json.dumps({**res.record(), "length": res.num_tokens, "n_mem": n_mem})
        return out


class _StepBar:
    """A progress bar over the steps the texts of one length may take (lm-eval shows none
    while a request runs, and cramming one length can take minutes on a CPU); texts that
    converge early move it on by the steps they did not need."""

    def __init__(self, label: str, texts: int, max_steps: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=texts * max_steps, unit="step",
                        desc=f"{label}: {texts} text{'s' if texts > 1 else ''}, at most "
                             f"{max_steps} steps each")

    def step(self, info: Any) -> None:
        self.bar.update(self.bar.total - info.text_steps_left - self.bar.n)

    def __enter__(self) -> _StepBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.update(self.bar.total - self.bar.n)  # the steps converged texts did not need
        self.bar.close()


HFLM_LOGGER = "lm_eval.models.huggingface"
NOT_A_STR = "`pretrained` model kwarg is not of type `str`"


@contextlib.contextmanager
def _without_log_line(name: str, text: str) -> Iterator[None]:
    """Drop one known line from a logger while the block runs."""
    logger = logging.getLogger(name)

    def drop(record: logging.LogRecord) -> bool:
        return text not in record.getMessage()

    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _with_mem_prefix(model: Any, adapter_dir: str) -> Any:
    """The model behind a PEFT prompt-tuning wrapper, after our own checks of the adapter.
    Where PEFT misses the KV cache (<= 0.21.2 on transformers >= 5.24), its generate is
    fixed to see it (peft_generate.py), so that generation tasks decode with the [mem]
    prefix on every version."""
    from peft import PeftModel

    from cram_harness.integrations.peft import load_adapter
    from cram_harness.integrations.peft_generate import fix_peft_generate, peft_reads_cache

    load_adapter(adapter_dir, model)  # refuses foreign, damaged or mismatched adapters
    peft_model = PeftModel.from_pretrained(model, adapter_dir)
    return peft_model if peft_reads_cache() else fix_peft_generate(peft_model)


assert "hf" in MODEL_REGISTRY, "registering 'cram' must not hide lm-eval's own models"
