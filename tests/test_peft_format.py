import json

import pytest
import torch
from safetensors.torch import save_file

import cram_harness
from cram_harness.errors import CramError
from cram_harness.integrations.peft import load_adapter
from tests.conftest import make_tiny_model, make_word_tokenizer


@pytest.fixture(scope="module")
def crammed():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    assert result.converged and result.greedy_exact
    return model, tok, result


@pytest.mark.parametrize("use_cache", [True, False])
def test_peft_reload_generates_the_text(crammed, tmp_path, use_cache):
    """PEFT's own generate, with its KV cache and without (the way that works whatever the
    transformers version: see README)."""
    from peft import PeftModel

    model, tok, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    assert sorted(p.name for p in path.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "cram.json"]
    info = json.loads((path / "cram.json").read_text())
    n = info["num_new_tokens"]
    assert info["seed_token_ids"] == result.token_ids[:1] and info["text_sha256"]
    assert info["config"]["lr"] == 0.3 and info["best_accuracy"] == 1.0

    peft_model = PeftModel.from_pretrained(model, str(path))
    seed = torch.tensor([info["seed_token_ids"]])
    out = peft_model.generate(input_ids=seed, attention_mask=torch.ones_like(seed),
                              do_sample=False, min_new_tokens=n, max_new_tokens=n,
                              pad_token_id=0, use_cache=use_cache)
    assert out[0, -n:].tolist() == result.token_ids[1:]
    assert tok.decode(out[0, -n:]) == "was at the"
    peft_model.unload() if hasattr(peft_model, "unload") else None


def test_declared_transformers_is_one_peft_decodes_with():
    """The bound in pyproject.toml: transformers 5.24 renamed the cache argument that PEFT's
    prompt-tuning generate reads (the test above fails there with use_cache=True)."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement
    from packaging.version import Version

    (declared,) = [Requirement(r) for r in requires("cram-harness")
                   if Requirement(r).name == "transformers"]
    assert Version(version("transformers")) in declared.specifier
    assert Version("5.24.0") not in declared.specifier


def test_auto_peft_model_loads_a_hub_style_adapter(tmp_path):
    """AutoPeftModelForCausalLM finds the base model from the adapter alone: a local
    directory stands in for a Hub repo, as `base_model_name_or_path` names it."""
    from peft import AutoPeftModelForCausalLM

    base = tmp_path / "base"
    make_tiny_model("gpt2").save_pretrained(base)
    make_word_tokenizer().save_pretrained(base)
    model, tok = cram_harness.load_model(str(base), device="cpu")
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    path = result.save_adapter(tmp_path / "adapter")
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(base.resolve())  # not a relative path
    card = (path / "README.md").read_text()
    assert "library_name: peft" in card and f"base_model: {base.resolve()}" in card
    assert "AutoPeftModelForCausalLM" in card

    loaded = AutoPeftModelForCausalLM.from_pretrained(str(path))
    info = json.loads((path / "cram.json").read_text())
    n = info["num_new_tokens"]
    out = loaded.generate(input_ids=torch.tensor([info["seed_token_ids"]]), do_sample=False,
                          min_new_tokens=n, max_new_tokens=n, pad_token_id=0)
    assert out[0, -n:].tolist() == result.token_ids[1:]


def test_a_hub_spec_writes_the_hub_id_and_revision(crammed, tmp_path):
    from cram_harness.integrations.peft import base_model_source

    model, _, result = crammed
    model.cram_spec = "hf:org/tiny@v1"
    try:
        assert base_model_source(model) == ("org/tiny", "v1")
        path = result.save_adapter(tmp_path / "adapter")
        config = json.loads((path / "adapter_config.json").read_text())
        assert (config["base_model_name_or_path"], config["revision"]) == ("org/tiny", "v1")
    finally:
        model.cram_spec = "tiny-gpt2"


def test_pushing_offline_says_so_in_one_line(crammed, tmp_path, monkeypatch):
    from cram_harness.integrations.peft import push_adapter

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    with pytest.raises(CramError, match="could not push .* the adapter on disk is unchanged"):
        push_adapter(path, "someone/crammed")
    assert (path / "cram.json").is_file()


def test_adapter_loads_back_for_warm_start(crammed, tmp_path):
    model, tok, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    memory, info = load_adapter(path, model)
    assert torch.equal(memory, result.memory)
    (again,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                 min_margin=0.5, init=memory[None])
    assert again.converged and again.steps == 1


def test_saving_over_an_adapter_replaces_it_whole(crammed, tmp_path):
    model, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    (path / "adapter_model.safetensors").write_bytes(b"old")
    result.save_adapter(path)
    assert load_adapter(path, model)[0].shape == result.memory.shape
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temp dirs left
    (path / "notes.txt").write_text("mine")  # no longer only what save_adapter wrote
    with pytest.raises(CramError, match="it also holds notes.txt"):
        result.save_adapter(path)
    assert (path / "notes.txt").read_text() == "mine"


def test_wrong_hidden_size_is_refused(crammed, tmp_path):
    _, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    other = make_tiny_model("gpt2", n_embd=32)
    with pytest.raises(CramError, match="hidden size is 32"):
        load_adapter(path, other)


def test_another_base_model_is_refused(crammed, tmp_path):
    _, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    with pytest.raises(CramError, match="made for another base model"):
        load_adapter(path, make_tiny_model("llama"))


def test_pickle_weights_are_never_loaded(crammed, tmp_path):
    model, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    (path / "adapter_model.safetensors").unlink()
    torch.save({"prompt_embeddings": result.memory}, path / "adapter_model.bin")
    with pytest.raises(CramError, match="pickle"):
        load_adapter(path, model)


def test_foreign_and_damaged_adapters_are_refused(crammed, tmp_path):
    model, _, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    config = json.loads((path / "adapter_config.json").read_text())
    (path / "adapter_config.json").write_text(json.dumps({**config, "peft_type": "LORA"}))
    with pytest.raises(CramError, match="LORA"):
        load_adapter(path, model)
    (path / "adapter_config.json").write_text(json.dumps(config))
    (path / "adapter_model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CramError, match="damaged"):
        load_adapter(path, model)
    save_file({"other": torch.zeros(1, 64)}, str(path / "adapter_model.safetensors"))
    with pytest.raises(CramError, match="prompt_embeddings"):
        load_adapter(path, model)
    with pytest.raises(CramError, match="does not exist"):
        load_adapter(tmp_path / "nowhere", model)
