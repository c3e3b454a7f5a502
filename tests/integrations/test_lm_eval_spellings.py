"""lm-eval users' habits on cram-eval's command line, and the results sinks they rely on
(W&B and a Hub dataset), each tested offline against its library's offline mode."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cram_harness.errors import CramError
from cram_harness.integrations.lm_eval import spellings as spell
from cram_harness.models.load import hub_spec


def test_underscores_space_separated_tasks_and_log_samples():
    args = ["--model_args", "pretrained=x", "--tasks", "a", "b", "--output_path=out",
            "--log_samples", "--limit", "2"]
    assert spell.normalize(args) == ["--model-args", "pretrained=x", "--tasks", "a,b",
                                     "--output-path=out", "--limit", "2"]


def test_model_args_name_the_model_and_its_options(tiny_model_dir):
    assert spell.model_args(None, "pretrained=org/name,revision=v2,dtype=bf16") == (
        "hf:org/name@v2", {"dtype": "bf16"})
    assert spell.model_args("hf", f"pretrained={tiny_model_dir},device=cpu") == (
        tiny_model_dir, {"device": "cpu"})
    assert spell.model_args("smollm2-135m", None) == ("smollm2-135m", {})
    with pytest.raises(CramError, match="no key 'peft'"):
        spell.model_args(None, "pretrained=x,peft=y")
    with pytest.raises(CramError, match="both name a model"):
        spell.model_args("smollm2-135m", "pretrained=org/name")
    with pytest.raises(CramError, match="no model given"):
        spell.model_args(None, "dtype=bf16")


def test_hub_ids_become_hf_specs(tiny_model_dir):
    assert hub_spec("org/name") == "hf:org/name"
    assert hub_spec("hf:org/name@v1", "v2") == "hf:org/name@v2"
    assert hub_spec(tiny_model_dir) == tiny_model_dir and hub_spec("smollm2-135m") == "smollm2-135m"
    with pytest.raises(CramError, match="needs a Hub model"):
        hub_spec(tiny_model_dir, "v2")


@pytest.mark.parametrize("value, expected", [("4", 4), ("0.5", 0.5), (None, None)])
def test_limit_is_a_count_or_a_share(value, expected):
    assert spell.limit(value) == expected


@pytest.mark.parametrize("value", ["0", "1.5", "-2", "half"])
def test_bad_limits_are_refused(value):
    with pytest.raises(CramError, match="--limit"):
        spell.limit(value)


def cram_eval(*args, env=None):
    return subprocess.run([sys.executable, "-m", "cram_harness", *args], capture_output=True,
                          text=True, timeout=600, env={**os.environ, **(env or {})})


def lm_eval_style_run(model_dir, corpus, out, *extra, env=None):
    return cram_eval("--model_args", f"pretrained={model_dir},device=cpu", "--tasks",
                     "capacity_pg19", "info_gain_pg19", "--data_files", corpus, "--limit",
                     "0.04", "--lengths", "4", "--max_steps", "5", "--output_path", str(out),
                     "--log_samples", *extra, env=env)


def test_an_lm_eval_style_command_line_runs(tiny_model_dir, word_corpus, tmp_path):
    proc = lm_eval_style_run(tiny_model_dir, word_corpus, tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out").rglob("results_*.json")
    res = json.loads(path.read_text())
    assert res["config"]["limit"] == 0.04 and res["config"]["device"] == "cpu"
    assert res["n-samples"]["capacity_pg19"] == {"original": 50, "effective": 2}  # ceil(50 x 0.04)
    assert set(res["results"]) == {"capacity_pg19", "info_gain_pg19"}
    # the keys lm-eval writes, so its tooling reads ours
    assert res["lm_eval_version"] and set(res["task_hashes"]) == set(res["results"])
    assert res["config"]["model_args"] == f"pretrained={tiny_model_dir}"


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_wandb_offline_run_holds_the_results(tiny_model_dir, word_corpus, tmp_path):
    pytest.importorskip("wandb")
    proc = lm_eval_style_run(tiny_model_dir, word_corpus, tmp_path / "out", "--wandb_args",
                             f"project=cram-test,mode=offline,dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr
    (run_file,) = Path(tmp_path, "wandb").glob("offline-run-*/run-*.wandb")
    logged = run_file.read_bytes()
    assert b"capacity_pg19/decoding_capacity" in logged and b"cram-test" in logged
    assert "wandb:" in proc.stdout


def test_hub_push_offline_keeps_the_results_and_says_so(tiny_model_dir, word_corpus, tmp_path):
    proc = lm_eval_style_run(tiny_model_dir, word_corpus, tmp_path / "out", "--hf_hub_log_args",
                             "hub_results_org=someone,push_results_to_hub=True",
                             env={"HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("error")]
    assert "could not push the results to the Hub" in line and "Traceback" not in proc.stderr
    assert list((tmp_path / "out").rglob("results_*.json"))  # written before the push


def test_unknown_sink_arguments_fail_before_any_work(tiny_model_dir, word_corpus, tmp_path):
    proc = lm_eval_style_run(tiny_model_dir, word_corpus, tmp_path / "out", "--hf_hub_log_args",
                             "hub_org=someone")
    assert proc.returncode == 2 and "no key 'hub_org'" in proc.stderr
    assert not list(tmp_path.rglob("records.jsonl"))
