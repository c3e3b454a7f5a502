"""Model folders, files and devices a user names: a folder without a config, a tokenizer or
whole weights, a damaged cache entry, a GGUF that is not one, a Hub spec offline, a device this
machine lacks: each is one line naming it and saying what to do."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from tests.helpers import (
    assert_one_error_line,
    run_args,
    run_cli,
)
from tests.tiny import make_word_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu': this machine has"),
                                             ("mps", "device 'mps' is not on this machine"),
                                             ("cuda:3", "device 'cuda:3' is not on this")])


def test_a_device_this_machine_lacks_names_the_ones_it_has(device, message, tiny_model_dir,
                                                           capsys):
    code, _, err = run_cli(["decode", "nowhere", "--model", tiny_model_dir, "--device", device],
                           capsys)
    assert "cpu" in assert_one_error_line(code, err, message)


def _model_dir(tmp_path: Path, config: object, weights: bool = True) -> str:
    path = tmp_path / "model"
    path.mkdir(exist_ok=True)
    make_word_tokenizer().save_pretrained(path)
    text = config if isinstance(config, str) else json.dumps(config)
    (path / "config.json").write_text(text)
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return str(path)


@pytest.mark.parametrize("config, weights, message", [
    ({"model_type": "bert", "hidden_size": 64}, True, "a bert model is no decoder"),
    ({"model_type": "t5", "is_encoder_decoder": True}, True, "a t5 model is no decoder"),
    ({"model_type": "fancy-lm"}, True, "model_type 'fancy-lm' is not one this transformers"),
    ([{"model_type": "llama"}], True, "holds list, not a JSON object"),
    ("{not json", True, "is not valid JSON"),
    ({"model_type": "llama"}, False, "has a config.json but no weights"),
    ({"model_type": "llama", "auto_map": {"AutoModelForCausalLM": "m.M"}}, True,
     "pass --trust-remote-code if you trust it"),
])


def test_a_model_directory_we_cannot_load_is_one_line(config, weights, message, tmp_path,
                                                      capsys):
    model = _model_dir(tmp_path, config, weights)
    code, _, err = run_cli(["decode", "nowhere", "--model", model], capsys)
    assert_one_error_line(code, err, message)


def _copy_model(tiny_model_dir: str, tmp_path: Path) -> Path:

    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_truncated_weights_name_the_file(tiny_model_dir, tmp_path, capsys):
    model = _copy_model(tiny_model_dir, tmp_path)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a partial download
    code, _, err = run_cli(["decode", "nowhere", "--model", str(model)], capsys)
    line = assert_one_error_line(code, err, f"{weights} is damaged or truncated")
    assert "download it again" in line


def test_a_damaged_cache_entry_says_to_delete_it(tiny_model_dir, tmp_path, capsys,
                                                 monkeypatch):
    import hashlib

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    monkeypatch.setenv("CRAM_HARNESS_CACHE", str(tmp_path / "cache"))
    entry = tmp_path / "cache" / "models" / f"m-{key.hexdigest()[:16]}"
    shutil.copytree(tiny_model_dir, entry)
    (entry / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")  # cut off mid-header
    code, _, err = run_cli(["decode", "nowhere", "--model", f"gguf:{gguf}"], capsys)
    line = assert_one_error_line(code, err, f"{entry / 'model.safetensors'} is damaged")
    assert f"delete the cache entry {entry}" in line


def test_a_model_folder_without_a_tokenizer_says_so(tiny_model_dir, tmp_path, capsys):
    model = _copy_model(tiny_model_dir, tmp_path)
    for file in model.glob("tokenizer*"):
        file.unlink()
    code, _, err = run_cli(["decode", "nowhere", "--model", str(model)], capsys)
    assert_one_error_line(code, err, f"{model} has a model but no tokenizer")


def test_a_hub_spec_without_network_answers_within_seconds(tmp_path, capsys, monkeypatch):

    from huggingface_hub import constants

    import cram_harness.models.load as models

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as a user without the variable
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                  "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    assert not models.hub_reachable()
    start = time.time()
    code, _, err = run_cli(["decode", "nowhere", "--model", "hf:nobody/nothing-here"], capsys)
    assert_one_error_line(code, err, "the Hub is not reachable from here")
    assert time.time() - start < 15


def _model_dir_without_config(tmp: Path) -> str:
    (tmp / "empty-model").mkdir()
    return str(tmp / "empty-model")


def _fake_gguf(tmp: Path) -> str:
    (tmp / "model.gguf").write_bytes(b"PK\x03\x04 a zip, not a gguf")
    return f"gguf:{tmp / 'model.gguf'}"


# Bad model specs and settings found when the model loads.
AT_THE_MODEL = [
    ("unknown-alias", lambda tmp: "gemma3-27m", [], "did you mean 'gemma3-270m'"),
    ("unknown-spec", lambda tmp: "no/such/model", [], "unknown model 'no/such/model'"),
    ("offline-hub", lambda tmp: "hf:org/x", [], "hf download org/x --local-dir DIR"),
    ("offline-hub-revision", lambda tmp: "hf:org/x@v2", [], "could not load hf:org/x"),
    ("missing-gguf", lambda tmp: f"gguf:{tmp / 'none.gguf'}", [], "does not exist"),
    ("not-a-gguf", _fake_gguf, [], "not a GGUF file"),
    ("directory-without-config", _model_dir_without_config, [], "has no config.json"),
    ("unknown-dtype", None, ["--dtype", "fp8"], "unknown dtype 'fp8'"),
    ("subspace-too-wide", None, ["--subspace", "65"], "is more than"),
]


@pytest.mark.parametrize("model, extra, message", [c[1:] for c in AT_THE_MODEL],
                         ids=[c[0] for c in AT_THE_MODEL])


def test_bad_model_is_one_line(model, extra, message, tiny_model_dir, tmp_path, capsys):
    spec = tiny_model_dir if model is None else model(tmp_path)
    code, out, err = run_cli(run_args(tmp_path, spec, extra), capsys)
    assert_one_error_line(code, err, message)
    assert not list((tmp_path / "out").rglob("records.jsonl"))
