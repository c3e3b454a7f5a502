import time

import pytest
import torch

from cram_harness.errors import CramError
from cram_harness.models.load import cache_dir, load_model, resolve_dtype
from tests.tiny import make_tiny_model, make_word_tokenizer


def test_unknown_spec_lists_the_aliases():
    with pytest.raises(CramError, match="did you mean 'smollm2-135m'.*gemma3-270m"):
        load_model("smollm2-13m")


def test_offline_hub_says_how_to_use_a_local_copy():
    with pytest.raises(CramError, match="hf download org/missing-model --local-dir DIR"):
        load_model("hf:org/missing-model@main")


def test_a_file_that_is_not_gguf_is_refused(tmp_path):
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(CramError, match="not a GGUF file"):
        load_model(f"gguf:{fake}")
    with pytest.raises(CramError, match="does not exist"):
        load_model(f"gguf:{tmp_path / 'missing.gguf'}")


def test_local_directory_loads_frozen_in_eval_mode(tmp_path):
    make_tiny_model("llama").save_pretrained(tmp_path)
    make_word_tokenizer().save_pretrained(tmp_path)
    model, tok = load_model(str(tmp_path), dtype="auto", device="cpu")
    assert model.dtype == torch.float32 and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    assert model.cram_spec == str(tmp_path) and tok.pad_token_id is not None
    bf16, _ = load_model(str(tmp_path), dtype="bf16")
    assert bf16.dtype == torch.bfloat16


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(CramError, match="no config.json"):
        load_model(str(tmp_path))


def test_dtype_names():
    assert resolve_dtype("auto", "cpu") == torch.float32
    with pytest.raises(CramError, match="unknown dtype"):
        resolve_dtype("fp8", "cpu")
    with pytest.raises(CramError, match="fp16 weights are not supported"):
        resolve_dtype("fp16", "cpu")  # before the model loads: no loss scaling in the engine


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRAM_HARNESS_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


@pytest.mark.slow
def test_smollm2_alias_is_cached_after_the_first_load(smollm2):
    model, tok = smollm2
    assert model.config.hidden_size == 576 and model.config.vocab_size == 49152
    assert tok("hello").input_ids[0] != tok.bos_token_id  # SmolLM2 adds no BOS
    assert list((cache_dir() / "models").glob("SmolLM2-135M-Instruct.Q4_1-*/config.json"))
    start = time.perf_counter()
    again, _ = load_model("smollm2-135m", device="cpu")
    assert time.perf_counter() - start < 15
    assert torch.equal(again.lm_head.weight, model.lm_head.weight)
