"""Nothing executes code found in a file a user hands cram-eval: an adapter's pickles are never
loaded, task YAML's Python tags never run, a dataset's loading script never runs, and a
model's remote code only when asked."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from cram_harness.errors import CramError
from cram_harness.harness.evaluator import RunSettings
from tests.helpers import (
    GOOD_TASK,
    assert_one_error_line,
    run_args,
    run_cli,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


class WritesAMarker:
    """A pickle that creates a file when it is loaded: proof that it was (never) loaded."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_the_marker_pickle_does_run_when_unpickled(tmp_path):
    """The check the security tests rely on: loading WritesAMarker creates its file."""
    pickle.loads(pickle.dumps(WritesAMarker(tmp_path / "m")))
    assert (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def adapter(tiny_model_dir, tmp_path_factory) -> Path:
    import cram_harness
    from cram_harness.models.load import load_model

    model, tok = load_model(tiny_model_dir, device="cpu")
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3, max_steps=2)
    return result.save_adapter(tmp_path_factory.mktemp("adapter") / "adapter")


def _hidden_32(path: Path, marker: Path) -> None:
    from safetensors.torch import save_file

    save_file({"prompt_embeddings": torch.zeros(1, 32)}, str(path / "adapter_model.safetensors"))


def _other_base(path: Path, marker: Path) -> None:
    info = json.loads((path / "cram.json").read_text())
    info["base_model"] = {**info["base_model"], "model_type": "llama", "num_layers": 16}
    (path / "cram.json").write_text(json.dumps(info))


def _pickle_bin(path: Path, marker: Path) -> None:
    (path / "adapter_model.safetensors").unlink()
    (path / "adapter_model.bin").write_bytes(pickle.dumps(WritesAMarker(marker)))


def _pickle_named_safetensors(path: Path, marker: Path) -> None:
    (path / "adapter_model.safetensors").write_bytes(pickle.dumps(WritesAMarker(marker)))


def _config_not_json(path: Path, marker: Path) -> None:
    (path / "adapter_config.json").write_text("{'peft_type': PROMPT_TUNING")


def _not_from_cram_harness(path: Path, marker: Path) -> None:
    (path / "cram.json").unlink()


def _gone(path: Path, marker: Path) -> None:
    shutil.rmtree(path)


ADAPTERS = [
    ("wrong-hidden-size", _hidden_32, "this model's hidden size is 64"),
    ("another-base-model", _other_base, "made for another base model"),
    ("pickle-weights", _pickle_bin, "only pickle files (adapter_model.bin), which are never"),
    ("pickle-named-safetensors", _pickle_named_safetensors, "is damaged"),
    ("config-not-json", _config_not_json, "is not valid JSON"),
    ("foreign-prompt-tuning-adapter", _not_from_cram_harness, "has no cram.json with"),
    ("missing-directory", _gone, "does not exist"),
]


@pytest.mark.parametrize("damage, message", [c[1:] for c in ADAPTERS],
                         ids=[c[0] for c in ADAPTERS])


def test_bad_adapter_is_one_line_and_never_unpickled(damage, message, adapter, tiny_model_dir,
                                                     tmp_path, capsys, monkeypatch):
    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) was called on an adapter")

    monkeypatch.setattr(torch, "load", no_pickle)
    path, marker = tmp_path / "adapter", tmp_path / "pwned"
    shutil.copytree(adapter, path)
    damage(path, marker)
    code, out, err = run_cli(["decode", str(path), "--model", tiny_model_dir, "--device", "cpu"],
                             capsys)
    assert_one_error_line(code, err, message)
    assert not marker.exists() and not out


PWN = "!!python/object/apply:os.system [\"touch {marker}\"]"


@pytest.mark.parametrize("where", ["top", "source", "lengths"])
def test_task_yaml_python_tags_never_run(where, tmp_path, capsys):
    marker = tmp_path / "pwned"
    tag = PWN.format(marker=marker)
    text = {"top": tag + "\n", "source": GOOD_TASK.replace("{kind: random}", tag),
            "lengths": GOOD_TASK.replace("[8]", tag)}[where]
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "evil.yaml").write_text(text)
    code, out, err = run_cli(["ls", "tasks", "--include-path", str(tmp_path / "t")], capsys)
    line = assert_one_error_line(code, err, "evil.yaml: not valid YAML")
    assert "python/object/apply:os.system" in line
    assert not marker.exists()


def test_a_dataset_loading_script_never_runs(tmp_path):
    """A dataset repo may carry a loading script, which `datasets` runs where remote code is
    trusted (before datasets 3 it ran unless told not to). Loading one must not run it, and
    says so in one line: the script here creates a marker file at import."""
    from cram_harness.data import HFDataset

    marker = tmp_path / "pwned"
    repo = tmp_path / "books"
    repo.mkdir()
    (repo / "books.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (repo / "books.jsonl").write_text('{"text": "One. Two. Three."}\n')
    with pytest.raises(CramError, match="loading script, which is never run"):
        HFDataset(str(repo), split="train").texts(1, 0)
    assert not marker.exists()


def test_remote_code_is_off_unless_asked(tiny_model_dir, tmp_path, capsys, monkeypatch):
    import transformers

    from cram_harness.models import load as models

    assert RunSettings().trust_remote_code is False
    seen = []
    for cls in (transformers.AutoModelForCausalLM, transformers.AutoTokenizer):
        real = cls.from_pretrained

        def spy(*args, real=real, **kwargs):
            seen.append(kwargs)
            return real(*args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", spy)
    models.load_model(tiny_model_dir, device="cpu")
    assert len(seen) == 2 and all(kw.get("trust_remote_code") is False for kw in seen)

    asked = []

    def stop(spec, **kwargs):
        asked.append(kwargs["trust_remote_code"])
        raise CramError("stopped here by the test")

    monkeypatch.setattr(models, "load_model", stop)
    base = run_args(tmp_path, "hf:org/x", [])
    for extra in ([], ["--trust-remote-code"]):
        code, out, err = run_cli([*base, *extra], capsys)
        assert_one_error_line(code, err, "stopped here by the test")
    assert asked == [False, True]
