"""lm-eval integration (lm-eval >= 0.4.11, < 0.5): our tasks inside `lm_eval`, and
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

import json
from collections import defaultdict
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cram_harness.errors import CramError

SUPPORTED = ((0, 4, 11), (0, 5, 0))


def check_lm_eval_version(found: str | None = None) -> None:
    found = found or version("lm_eval")
    parts = tuple(int(p) for p in found.split("+")[0].split(".")[:3] if p.isdigit())
    low, high = SUPPORTED
    if not low <= parts < high:
        raise CramError(f"lm-eval {found} is not supported: cram-harness's lm-eval plugin needs "
                        "lm-eval >= 0.4.11, < 0.5 (`pip install 'lm-eval>=0.4.11,<0.5'`)")


check_lm_eval_version()

from lm_eval.api.instance import Instance  # noqa: E402
from lm_eval.api.registry import MODEL_REGISTRY, register_model  # noqa: E402
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.models.huggingface import HFLM  # noqa: E402

from cram_harness import metrics  # noqa: E402


def task_dir() -> Path:
    """The lm-eval task YAML: in the wheel, or in a checkout's plugins/lm_eval."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "lm_eval_tasks", here.parent / "plugins" / "lm_eval"):
        if candidate.is_dir():
            return candidate
    raise CramError("cram-harness's lm-eval task files are missing: reinstall cram-harness")


def load_docs(cram_task: str, lengths: list[int] | None = None, num_samples: int | None = None,
              seed: int = 0, data_files: str | None = None, **_model_args: Any) -> dict:
    """One document per (text, length) of one of our tasks, as lm-eval's `test` split.
    lm-eval passes the task's metadata merged with --metadata and --model_args."""
    import datasets

    from cram_harness.registry import make_source, resolve_tasks

    (task,) = resolve_tasks([cram_task])
    source = {"kind": "local", "path": data_files} if data_files else task.source
    texts = make_source(source).texts(limit=num_samples or task.num_samples, seed=int(seed))
    rows = [{"text_id": t.id, "text": t.text, "length": int(length),
             "n_mem": int(task.mem_tokens[0])}
            for length in (lengths or task.lengths) for t in texts]
    return {"test": datasets.Dataset.from_list(rows)}


class CramTask(ConfigurableTask):
    """Emits one `cram` request per document; lm-eval sends it to `CramLM.cram`."""

    OUTPUT_TYPE = "cram"

    def __init__(self, config: dict | None = None) -> None:
        config = {k: v for k, v in (config or {}).items() if k != "class"}
        config["output_type"] = None  # lm-eval checks only its own four types when set
        super().__init__(config=config)

    def construct_requests(self, doc: dict, ctx: Any, **kwargs: Any) -> Instance:
        for unused in ("apply_chat_template", "chat_template"):
            kwargs.pop(unused, None)
        args = (doc["text"], {"length": doc["length"], "n_mem": doc["n_mem"]})
        return Instance(request_type="cram", doc=doc, arguments=args, idx=0, **kwargs)


def process_results(doc: dict, results: list[str]) -> dict:
    """Per-document metrics; Table 1's gains only where the vector is full."""
    rec = json.loads(results[0])
    out = {"decoding_capacity": (rec["length"], rec["best_accuracy"]),
           "best_accuracy": rec["best_accuracy"], "greedy_exact": float(rec["greedy_exact"])}
    if rec["best_accuracy"] <= metrics.LOSSLESS_THRESHOLD:
        out.update({k: rec[k] for k in ("token_gain", "information_gain",
                                        "information_gain_bits")})
    return out


def decoding_capacity(items: list[tuple[int, float]]) -> int | None:
    """The longest length whose mean best accuracy is >= 0.99 (None if none is)."""
    table: dict[int, list[float]] = defaultdict(list)
    for length, acc in items:
        table[int(length)].append(float(acc))
    return metrics.decoding_capacity(table)


@register_model("cram")
class CramLM(HFLM):
    """HFLM over any cram-harness model spec (GGUF aliases too), optionally with a [mem]
    prefix from an adapter (`mem=DIR`), that also serves `cram` requests."""

    def __init__(self, pretrained: str, mem: str | None = None, device: str | None = None,
                 dtype: str = "auto", max_steps: int | None = None, lr: float | None = None,
                 min_margin: float | None = None, seed: int = 0,
                 cram_batch_size: int = 8, **kwargs: Any) -> None:
        import torch

        from cram_harness.models import load_model

        if device is None or (device.startswith("cuda") and not torch.cuda.is_available()):
            device = "auto"  # lm-eval's CLI defaults to cuda:0
        model, tokenizer = load_model(str(pretrained), device=device, dtype=str(dtype))
        self.base_model = model
        if mem:
            model = _with_mem_prefix(model, str(mem))
        super().__init__(pretrained=model, tokenizer=tokenizer, **kwargs)
        self.spec = str(pretrained)
        options = {"max_steps": max_steps, "lr": lr, "min_margin": min_margin}
        self.engine_options = {"seed": int(seed),
                               **{k: v for k, v in options.items() if v is not None}}
        self.cram_batch_size = int(cram_batch_size)

    def cram(self, requests: list[Instance]) -> list[str]:
        """Cram each request's text at its length; one batched run per (length, k)."""
        from cram_harness.api import cram

        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for i, req in enumerate(requests):
            groups[(req.args[1]["length"], req.args[1]["n_mem"])].append(i)
        out: list[str] = [""] * len(requests)
        for (length, n_mem), idx in groups.items():
            results = cram(self.base_model, [requests[i].args[0] for i in idx], n_mem=n_mem,
                           max_tokens=length, tokenizer=self.tokenizer,
                           batch_size=self.cram_batch_size, **self.engine_options)
            for i, res in zip(idx, results):
                out[i] = json.dumps({**res.record(), "length": length, "n_mem": n_mem})
        return out


def _with_mem_prefix(model: Any, adapter_dir: str) -> Any:
    """The model behind a PEFT prompt-tuning wrapper, after our own checks of the adapter."""
    from peft import PeftModel

    from cram_harness.peft_format import load_adapter

    load_adapter(adapter_dir, model)  # refuses foreign, damaged or mismatched adapters
    return PeftModel.from_pretrained(model, adapter_dir)


assert "hf" in MODEL_REGISTRY, "registering 'cram' must not hide lm-eval's own models"
