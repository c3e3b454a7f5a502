import json

import pytest
import torch
from safetensors.torch import save_file

import cram_harness
from cram_harness.errors import CramError
from cram_harness.peft_format import load_adapter
from tests.conftest import make_tiny_model, make_word_tokenizer


@pytest.fixture(scope="module")
def crammed():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    assert result.converged and result.greedy_exact
    return model, tok, result


def test_peft_reload_generates_the_text(crammed, tmp_path):
    from peft import PeftModel

    model, tok, result = crammed
    path = result.save_adapter(tmp_path / "adapter")
    assert sorted(p.name for p in path.iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "cram.json"]
    info = json.loads((path / "cram.json").read_text())
    n = info["num_new_tokens"]
    assert info["seed_token_ids"] == result.token_ids[:1] and info["text_sha256"]
    assert info["config"]["lr"] == 0.3 and info["best_accuracy"] == 1.0

    peft_model = PeftModel.from_pretrained(model, str(path))
    seed = torch.tensor([info["seed_token_ids"]])
    out = peft_model.generate(input_ids=seed, attention_mask=torch.ones_like(seed),
                              do_sample=False, min_new_tokens=n, max_new_tokens=n,
                              pad_token_id=0)
    assert out[0, -n:].tolist() == result.token_ids[1:]
    assert tok.decode(out[0, -n:]) == "was at the"
    peft_model.unload() if hasattr(peft_model, "unload") else None


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
    (path / "stale.txt").write_text("old")
    result.save_adapter(path)
    assert not (path / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]  # no temp dirs left


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
