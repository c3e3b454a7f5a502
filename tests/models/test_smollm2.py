"""Real-model checks on SmolLM2-135M (slow: about a minute of optimization)."""

import pytest
import torch

import cram_harness
from cram_harness.integrations.peft import load_adapter
from tests.tiny import gutenberg_text

pytestmark = pytest.mark.slow


def test_sixteen_novel_tokens_fit_in_one_vector_and_come_back(smollm2, tmp_path):
    from peft import PeftModel

    model, tok = smollm2
    # lr 0.03, not the paper's 1e-2, which takes this text 347 steps instead of 198
    (r,) = cram_harness.cram(model, gutenberg_text(), max_tokens=16, tokenizer=tok, lr=0.03)
    assert r.num_tokens == 16 and r.best_accuracy == 1.0 and r.converged
    assert r.greedy_exact
    assert r.base_accuracy < 1.0 and r.token_gain > 0 and r.information_gain > 0

    path = r.save_adapter(tmp_path / "katrine")
    n = r.num_tokens - 1
    peft_model = PeftModel.from_pretrained(model, str(path))
    seed = torch.tensor([r.seed_token_ids])
    # the README's call, exact on every transformers (PEFT's cached one is not from 5.24 on)
    out = peft_model.generate(input_ids=seed, do_sample=False, min_new_tokens=n,
                              max_new_tokens=n, use_cache=False)
    assert out[0, -n:].tolist() == r.token_ids[1:]
    assert tok.decode(out[0]) == tok.decode(r.token_ids)
    memory, info = load_adapter(path, model)
    assert info["model_spec"] == "smollm2-135m" and torch.equal(memory, r.memory)
