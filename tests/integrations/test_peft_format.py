import json

import pytest
import torch
from safetensors.torch import save_file

import cram_harness
from cram_harness.errors import CramError
from cram_harness.integrations.peft import load_adapter
from tests.tiny import make_tiny_model, make_word_tokenizer

pytestmark = pytest.mark.versions  # PEFT's format and load change with its version


@pytest.fixture(scope="module")
def crammed():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    assert result.converged and result.greedy_exact
    return model, tok, result


def test_peft_reload_generates_the_text(crammed, tmp_path):
    """PEFT's own generate, without its KV cache: the call the README shows, exact on every
    transformers version (with the cache: tests/integrations/test_peft_generate.py)."""
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
                              pad_token_id=0, use_cache=False)
    assert out[0, -n:].tolist() == result.token_ids[1:]
    assert tok.decode(out[0, -n:]) == "was at the"
    peft_model.unload() if hasattr(peft_model, "unload") else None


def test_declared_transformers_takes_todays_releases():
    """pyproject.toml's transformers range holds the installed version and the newest tested
    (5.25): PEFT's cached generate on >= 5.24 is answered in the docs and by
    fix_peft_generate, not by a bound that keeps every user back."""
    from importlib.metadata import requires, version

    from packaging.requirements import Requirement
    from packaging.version import Version

    (declared,) = [Requirement(r) for r in requires("cram-harness")
                   if Requirement(r).name == "transformers"]
    for release in (version("transformers"), "5.23.0", "5.25.0"):
        assert Version(release) in declared.specifier, (release, declared)


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
    assert "AutoPeftModelForCausalLM" in card and "use_cache=False" in card
    from importlib.metadata import version  # the card says which call decodes on which versions

    assert f"transformers {version('transformers')}, peft {version('peft')}" in card
    assert "fix_peft_generate" in card and "decode_adapter" in card

    loaded = AutoPeftModelForCausalLM.from_pretrained(str(path))
    info = json.loads((path / "cram.json").read_text())
    n = info["num_new_tokens"]
    out = loaded.generate(input_ids=torch.tensor([info["seed_token_ids"]]), do_sample=False,
                          min_new_tokens=n, max_new_tokens=n, pad_token_id=0, use_cache=False)
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


def test_an_alias_is_recorded_as_itself_and_resolved_where_loaded(crammed, tmp_path):
    """An adapter made with an offline alias names the alias, not the dequantized cache
    folder, whose name differs between machines and transformers versions; an older
    adapter that names such a folder is resolved from its cram.json."""
    from cram_harness.integrations.peft import adapter_base_spec

    model, _, result = crammed
    model.cram_spec = result.model_spec = "smollm2-135m"
    try:
        path = result.save_adapter(tmp_path / "adapter")
    finally:
        model.cram_spec = result.model_spec = "tiny-gpt2"
    config = json.loads((path / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2-135m"
    card = (path / "README.md").read_text()
    assert 'cram_harness.load_model("smollm2-135m")' in card and "use_cache=False" in card
    assert "base_model:" not in card  # the Hub's field takes a repo, not an alias
    assert adapter_base_spec(path) == "smollm2-135m"
    old = {**config, "base_model_name_or_path": "/elsewhere/cache/SmolLM2-135M-Instruct.Q4_1-1"}
    (path / "adapter_config.json").write_text(json.dumps(old))
    assert adapter_base_spec(path) == "smollm2-135m"
    (path / "cram.json").unlink()
    with pytest.raises(CramError, match="local model /elsewhere/cache/.* not on this machine"):
        adapter_base_spec(path)
    (path / "adapter_config.json").write_text(json.dumps(
        {**config, "base_model_name_or_path": "org/tiny", "revision": "abc123"}))
    assert adapter_base_spec(path) == "hf:org/tiny@abc123"


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
