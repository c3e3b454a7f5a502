"""Our tasks inside lm-eval, and [mem]-prefixed models on lm-eval's own tasks (offline)."""

import json
import os
import subprocess
import sys

import pytest
import torch
import transformers
from packaging.version import Version

from cram_harness import metrics
from cram_harness.errors import CramError
from cram_harness.integrations.peft_generate import peft_reads_cache
from tests.tiny import make_tiny_model, word_text

LL_TASK = """task: local_ll
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: loglikelihood
doc_to_text: context
doc_to_target: "{{{{' ' + target}}}}"
metric_list:
  - {{metric: acc, aggregation: mean, higher_is_better: true}}
"""


def run_cli(*args, timeout=600):
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "cram_harness.integrations.lm_eval.cli", *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def only_results(out_dir):
    (path,) = list(out_dir.rglob("results_*.json"))
    return json.loads(path.read_text())


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
@pytest.mark.parametrize("explicit_include", [False, True])
def test_lm_eval_cli_runs_our_task(tiny_model_dir, tmp_path, explicit_include):
    """The README's random task, and the novels shipped inside cram-harness (the tasks a
    user without network has), through lm-eval's own command line."""
    from cram_harness.integrations.lm_eval.bridge import task_dir

    extra = ["--include_path", str(task_dir())] if explicit_include else []
    tasks = ["cram_capacity_random"] if not explicit_include else [
        "cram_gutenberg", "--metadata", '{"lengths": [4, 6]}']
    device = ",device=cpu" if explicit_include else ""  # the documented model argument
    proc = run_cli("--model", "cram", "--model_args",
                   f"pretrained={tiny_model_dir},max_steps=5,lr=0.3{device}", "--tasks", *tasks,
                   "--limit", "2", "--output_path", str(tmp_path), *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "decoding_capacity" in proc.stdout  # lm-eval's own table
    results = only_results(tmp_path)
    name = "cram_capacity_gutenberg" if explicit_include else "cram_capacity_random"
    res = results["results"][name]
    assert {"decoding_capacity,none", "best_accuracy,none", "best_accuracy_stderr,none",
            "greedy_exact,none"} <= set(res)
    assert res["decoding_capacity_stderr,none"] == "N/A"
    assert results["config"]["device"] == "cpu"  # not lm-eval's default cuda:0 on a CPU
    assert "cram L=" in proc.stderr and "at most 5 steps each" in proc.stderr  # progress
    assert "not of type `str`" not in proc.stderr  # a loaded model is our design, not a slip
    if explicit_include:
        assert {"cram_token_gain_gutenberg", "cram_info_gain_gutenberg"} <= set(
            results["results"])


def test_the_bridge_pools_the_documents_as_the_metric_table_reads_records():
    """lm-eval's items per document, aggregated over documents, give what the table computes
    from the same records in one pool."""
    from cram_harness.integrations.lm_eval.bridge import AGGREGATIONS, process_results
    from cram_harness.results.records import SampleRecord

    docs = [[dict(length=8, best_accuracy=1.0, greedy_accuracy=1.0, greedy_exact=True),
             dict(length=16, best_accuracy=0.5, greedy_accuracy=0.25, greedy_exact=False,
                  token_gain=6.0, information_gain=30.0, information_gain_bits=43.3)],
            [dict(length=8, best_accuracy=0.75, greedy_accuracy=0.5, greedy_exact=False,
                  token_gain=4.0, information_gain=20.0, information_gain_bits=28.9),
             dict(length=16, best_accuracy=0.5, greedy_accuracy=0.5, greedy_exact=False,
                  token_gain=7.0, information_gain=35.0, information_gain_bits=50.5)]]
    items = [process_results({}, [json.dumps({"key": "", **r}) for r in doc]) for doc in docs]
    records = [SampleRecord.from_json(r) for doc in docs for r in doc]
    reading = metrics.Reading(records, records)
    for m in metrics.METRICS:
        if not m.lm_eval:
            continue
        pooled = [i[m.name] for i in items]
        got = sum(pooled) / len(pooled) if m.lm_eval == "mean" else \
            AGGREGATIONS[m.lm_eval](pooled)
        want = m.compute(reading)
        assert got == pytest.approx(getattr(want, "mean", want)), m.name


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_lm_eval_users_hub_id_offline_is_one_line(tmp_path):
    proc = run_cli("--model", "cram", "--model_args", "pretrained=org/name,revision=v2",
                   "--tasks", "cram_capacity_random", "--limit", "1",
                   "--output_path", str(tmp_path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error")]
    assert "hf:org/name" in line and "hf download org/name" in line


@pytest.mark.versions
def test_simple_evaluate_gives_the_metrics_with_stderr(tiny_model_dir):
    import lm_eval
    from lm_eval.tasks import TaskManager

    from cram_harness.integrations.lm_eval.bridge import task_dir

    out = lm_eval.simple_evaluate(
        model="cram", model_args=f"pretrained={tiny_model_dir},max_steps=8,lr=0.3",
        tasks=["cram_info_gain_pg19"], limit=1, log_samples=True,
        task_manager=TaskManager(include_path=str(task_dir()), metadata={
            "data_files": _corpus_file(tiny_model_dir), "lengths": [6, 12], "num_samples": 2}))
    res = out["results"]["cram_info_gain_pg19"]
    assert "best_accuracy_stderr,none" in res
    # lm-eval's directions are the metric table's: a spread is better small
    assert out["higher_is_better"]["cram_info_gain_pg19"] == {
        name: better for m in metrics.METRICS if m.lm_eval
        for name, better in m.directions().items()}
    # --limit takes texts, each at every length (it used to drop the longer lengths)
    assert out["n-samples"]["cram_info_gain_pg19"]["effective"] == 1
    (sample,) = out["samples"]["cram_info_gain_pg19"]
    runs = [json.loads(resp[0]) for resp in sample["resps"]]
    assert [r["length"] for r in runs] == [6, 12]
    # lm-eval's aggregation gives back what the runs measured: the mean best accuracy over
    # the text's two lengths, and the capacity of their accuracy table.
    accuracy = {r["length"]: [r["best_accuracy"]] for r in runs}
    assert res["best_accuracy,none"] == pytest.approx(
        sum(r["best_accuracy"] for r in runs) / 2)
    assert res["decoding_capacity,none"] == metrics.decoding_capacity(accuracy)
    full = [r for r in runs if r["best_accuracy"] <= 0.99]
    assert res["n_full_vectors,none"] == len(full)
    if full:  # Table 1's gain: pooled over the full vectors only
        assert res["information_gain,none"] == pytest.approx(
            sum(r["information_gain"] for r in full) / len(full))


def _corpus_file(model_dir):
    from tests.tiny import word_sentences

    path = os.path.join(os.path.dirname(model_dir), "lm_eval_corpus")
    os.makedirs(path, exist_ok=True)
    for i in range(2):
        with open(os.path.join(path, f"book{i}.txt"), "w") as f:
            f.write(word_sentences(10, seed=i))
    return path


def _adapter(tmp_path, model, k=2):
    from cram_harness.integrations.peft import save_adapter

    gen = torch.Generator().manual_seed(0)
    mem = torch.randn(k, 64, generator=gen)
    return mem, save_adapter(tmp_path / "adapter", mem, model, {"model_spec": "tiny"})


def _ll_task(tmp_path):
    docs = tmp_path / "docs.jsonl"
    with open(docs, "w") as f:
        for i in range(3):
            words = word_text(10, seed=i).split()
            f.write(json.dumps({"context": " ".join(words[:6]),
                                "target": " ".join(words[6:])}) + "\n")
    task_dir = tmp_path / "ll_task"
    task_dir.mkdir()
    (task_dir / "local_ll.yaml").write_text(LL_TASK.format(data=docs))
    return task_dir, docs


def _expected_loglikelihoods(model_dir, docs, mem):
    from cram_harness.engine.measure import text_logits
    from cram_harness.models.load import load_model

    model, tok = load_model(model_dir, device="cpu")
    out = []
    for line in open(docs):
        doc = json.loads(line)
        ctx, cont = tok(doc["context"]).input_ids, tok(" " + doc["target"]).input_ids
        ids = torch.tensor([ctx + cont])
        prefix = None if mem is None else mem[None]
        logp = text_logits(model, ids, torch.ones_like(ids), prefix).log_softmax(-1)[0]
        out.append(sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont)))
    return out


@pytest.mark.versions
@pytest.mark.parametrize("route", ["hf+peft", "cram+mem"])
def test_adapter_changes_loglikelihoods_as_our_forward_says(tiny_model_dir, tmp_path, route):
    import lm_eval
    from lm_eval.tasks import TaskManager

    import cram_harness.integrations.lm_eval.bridge  # noqa: F401  (registers `cram`)
    from cram_harness.models.load import load_model

    model, _ = load_model(tiny_model_dir, device="cpu")
    mem, adapter = _adapter(tmp_path, model)
    task_dir, docs = _ll_task(tmp_path)
    name, args = ("hf", f"pretrained={tiny_model_dir},peft={adapter},device=cpu") \
        if route == "hf+peft" else ("cram", f"pretrained={tiny_model_dir},mem={adapter}")
    out = lm_eval.simple_evaluate(model=name, model_args=args, tasks=["local_ll"],
                                  task_manager=TaskManager(include_path=str(task_dir)),
                                  log_samples=True)
    got = [s["resps"][0][0][0] for s in sorted(out["samples"]["local_ll"],
                                               key=lambda s: s["doc_id"])]
    expected = _expected_loglikelihoods(tiny_model_dir, docs, mem)
    without = _expected_loglikelihoods(tiny_model_dir, docs, None)
    assert got == pytest.approx(expected, abs=1e-4)
    assert got != pytest.approx(without, abs=1e-2)


GEN_TASK = """task: local_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: context
doc_to_target: target
generation_kwargs:
  until: ["[EOS]"]
  max_gen_toks: {n}
  do_sample: false
metric_list:
  - {{metric: exact_match, aggregation: mean, higher_is_better: true}}
"""


# PEFT <= 0.21.2 misses the KV cache transformers >= 5.24 renamed (integrations/peft_generate.py)
BROKEN_PAIR = Version(transformers.__version__) >= Version("5.24.0.dev0") \
    and not peft_reads_cache()


@pytest.mark.versions
@pytest.mark.parametrize("route", [
    pytest.param("hf+peft", marks=pytest.mark.xfail(
        BROKEN_PAIR, strict=True, reason="PEFT <= 0.21.2 misses the KV cache transformers >= "
        "5.24 renamed (docs/recipes/lm-eval.md)")),
    "cram+mem"])
def test_generation_tasks_decode_a_crammed_text_through_peft(tiny_model_dir, tmp_path, route):
    """lm-eval's own generate_until gives the crammed text back: through PEFT's cached
    generate with --model hf,peft= (where PEFT finds the cache: transformers < 5.24 or PEFT
    >= 0.22), through our model type with mem= on every version (it fixes PEFT's generate
    where PEFT misses the cache)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import cram_harness
    import cram_harness.integrations.lm_eval.bridge  # noqa: F401  (registers `cram`)

    model, tok = cram_harness.load_model(tiny_model_dir, device="cpu")
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    assert result.greedy_exact
    adapter = result.save_adapter(tmp_path / "adapter")
    docs = tmp_path / "gen.jsonl"
    docs.write_text(json.dumps({"context": "she", "target": "was at the"}) + "\n")
    task_dir = tmp_path / "gen_task"
    task_dir.mkdir()
    (task_dir / "local_gen.yaml").write_text(GEN_TASK.format(data=docs, n=3))
    name, args = ("hf", f"pretrained={tiny_model_dir},peft={adapter},device=cpu") \
        if route == "hf+peft" else ("cram", f"pretrained={tiny_model_dir},mem={adapter}")
    out = lm_eval.simple_evaluate(
        model=name, model_args=args, tasks=["local_gen"],
        task_manager=TaskManager(include_path=str(task_dir)), log_samples=True)
    (sample,) = out["samples"]["local_gen"]
    assert sample["filtered_resps"][0].strip() == "was at the"
    assert out["results"]["local_gen"]["exact_match,none"] == 1.0


def test_adapter_for_another_base_is_refused(tiny_model_dir, tmp_path):
    from cram_harness.integrations.lm_eval.bridge import CramLM

    _, adapter = _adapter(tmp_path, make_tiny_model("llama"))
    with pytest.raises(CramError, match="made for another base model"):
        CramLM(pretrained=tiny_model_dir, mem=str(adapter))


@pytest.mark.versions
def test_version_range_is_checked():
    from cram_harness.integrations.lm_eval.bridge import check_lm_eval_version

    check_lm_eval_version("0.4.12")
    for bad in ("0.4.11", "0.5.0"):
        with pytest.raises(CramError, match=">= 0.4.12, < 0.5"):
            check_lm_eval_version(bad)


@pytest.mark.versions
def test_our_model_does_not_hide_lm_evals_own():
    from lm_eval.api.registry import get_model

    import cram_harness.integrations.lm_eval.bridge  # noqa: F401

    assert get_model("cram").__name__ == "CramLM"
    assert get_model("hf").__name__ == "HFLM"


@pytest.mark.slow
def test_smollm2_alias_with_a_mem_prefix_in_lm_eval(tmp_path):
    """The GGUF alias lm-eval's HF model cannot load, through our model type, with a real
    crammed adapter: the log-likelihoods are those of our own forward pass."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    import cram_harness
    from cram_harness.engine.measure import text_logits
    from cram_harness.integrations.lm_eval.bridge import CramLM

    model, tok = cram_harness.load_model("smollm2-135m", device="cpu")
    (result,) = cram_harness.cram(model, "It was a dark and stormy night", tokenizer=tok,
                                  max_steps=30)
    adapter = result.save_adapter(tmp_path / "adapter")
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"context": "The old house stood", "target": "on the hill"}) + "\n")
    task_dir = tmp_path / "ll_task"
    task_dir.mkdir()
    (task_dir / "local_ll.yaml").write_text(LL_TASK.format(data=docs))
    lm = CramLM(pretrained="smollm2-135m", mem=str(adapter))
    out = lm_eval.simple_evaluate(model=lm, tasks=["local_ll"], log_samples=True,
                                  task_manager=TaskManager(include_path=str(task_dir)))
    got = out["samples"]["local_ll"][0]["resps"][0][0][0]
    ctx, cont = tok("The old house stood").input_ids, tok(" on the hill").input_ids
    ids = torch.tensor([ctx + cont])
    logp = text_logits(model, ids, torch.ones_like(ids), result.memory[None]).log_softmax(-1)[0]
    expected = sum(float(logp[len(ctx) - 1 + j, t]) for j, t in enumerate(cont))
    assert got == pytest.approx(expected, abs=1e-3)


@pytest.mark.versions
def test_the_cram_model_takes_cram_evals_engine_settings(tiny_model_dir):
    """`--model cram` reads the same EngineSettings as `cram-eval run`: the levers reach the
    engine's config, strings from a model_args dict are read as lm-eval reads them, and a
    setting that makes no sense is one line before any request."""
    from cram_harness.integrations.lm_eval.bridge import CramLM

    lm = CramLM(tiny_model_dir, device="cpu", lr="0.3", temperature=0.5, subspace="8",
                checkpointing="true")
    config = lm.engine.config(lm.base_model, 2)
    assert (config.n_mem, config.lr, config.temperature, config.subspace,
            config.checkpointing) == (2, 0.3, 0.5, 8, True)
    with pytest.raises(CramError, match="^lr= is nan"):
        CramLM(tiny_model_dir, device="cpu", lr=float("nan"))
    with pytest.raises(CramError, match="autocast= is 'fp8': expected auto, bf16 or off"):
        CramLM(tiny_model_dir, device="cpu", autocast="fp8")
    with pytest.raises(CramError, match=r"^cram_batch_size= is 0: expected a whole number"):
        CramLM(tiny_model_dir, device="cpu", cram_batch_size="0")
    with pytest.raises(CramError, match="needs pretrained=SPEC"):
        CramLM(device="cpu")


def test_cram_lm_eval_moves_a_device_model_argument_to_its_flag():
    """lm-eval hands the model --device beside model_args: `device=` in model_args, as the
    docs say, would reach the model twice."""
    from cram_harness.integrations.lm_eval.cli import _device_out_of_model_args as moved

    assert moved(["run", "--model_args", "pretrained=x,device=cpu,lr=1"]) == (
        ["run", "--model_args", "pretrained=x,lr=1"], "cpu")
    assert moved(["--model-args=pretrained=x,device=cuda:1"]) == (
        ["--model-args=pretrained=x"], "cuda:1")
    assert moved(["--model_args", "pretrained=x"]) == (["--model_args", "pretrained=x"], None)
