"""PEFT's own generate decodes a crammed adapter on every transformers version: without the
KV cache always; with it where PEFT finds the cache (transformers < 5.24, or PEFT >= 0.22 on
any); and with the opt-in `fix_peft_generate` on the broken pair (PEFT <= 0.21.2 with
transformers >= 5.24), where it is needed, and on either side of it, where it changes
nothing. Runs in each env of CI's matrix (tox.ini: the newest PEFT and transformers, PEFT
0.21.2 with the newest transformers, the lowest we declare, transformers 5.23)."""

import json
import warnings

import pytest
import torch
import transformers
from packaging.version import Version

import cram_harness
from cram_harness.integrations import peft_generate
from tests.tiny import make_tiny_model, make_word_tokenizer

# Per architecture, a text that crams within tens of steps and that a prompt put in front
# again at each step (PEFT missing the cache) decodes wrongly: "she was at the" on the tiny
# llama comes out right by chance even then ("house" is no word of the tiny vocabulary: [UNK],
# a token like any other).
TEXTS = {"llama": "she was at the little house", "gpt2": "she was at the"}
pytestmark = pytest.mark.versions
RENAMED = Version(transformers.__version__) >= Version("5.24.0.dev0")
BROKEN_PAIR = RENAMED and not peft_generate.peft_reads_cache()  # PEFT misses the cache


@pytest.fixture(scope="module", params=["llama", "gpt2"])
def crammed(request, tmp_path_factory):
    model, tok = make_tiny_model(request.param), make_word_tokenizer()
    (result,) = cram_harness.cram(model, TEXTS[request.param], tokenizer=tok, lr=0.3,
                                  max_steps=400, min_margin=0.5)
    assert result.converged and result.greedy_exact
    path = result.save_adapter(tmp_path_factory.mktemp("adapter") / request.param)
    return model, result, path


def peft_decodes(crammed, fix=False, **kwargs) -> bool:
    """Whether PEFT's generate, from the adapter's seed, gives back the crammed tokens."""
    from peft import PeftModel

    model, result, path = crammed

    info = json.loads((path / "cram.json").read_text())
    n = info["num_new_tokens"]
    peft_model = PeftModel.from_pretrained(model, str(path))
    if fix:
        assert cram_harness.fix_peft_generate(peft_model) is peft_model
    seed = torch.tensor([info["seed_token_ids"]])
    out = peft_model.generate(input_ids=seed, do_sample=False, min_new_tokens=n,
                              max_new_tokens=n, pad_token_id=0, **kwargs)
    return out[0].tolist() == result.token_ids


def test_without_the_cache_peft_decodes_on_every_version(crammed):
    assert peft_decodes(crammed, use_cache=False)


@pytest.mark.skipif(BROKEN_PAIR, reason="the strict expected failure below covers it")
def test_with_the_cache_peft_decodes_where_it_finds_the_cache(crammed):
    assert peft_decodes(crammed)


@pytest.mark.skipif(not BROKEN_PAIR, reason="PEFT finds the cache here")
@pytest.mark.xfail(strict=True, reason="PEFT <= 0.21.2 reads past_key_values, which "
                   "transformers >= 5.24 calls cache: fix_peft_generate is the answer")
def test_with_the_cache_peft_misses_it_on_the_broken_pair(crammed):
    assert peft_decodes(crammed)


@pytest.mark.skipif(not peft_generate.peft_reads_cache(), reason="this PEFT needs the fix")
def test_the_fix_does_nothing_where_peft_reads_the_cache_and_says_so_once(crammed,
                                                                          monkeypatch):
    from peft import PeftModel

    model, _, path = crammed
    monkeypatch.setattr(peft_generate, "_said", [])
    peft_model = PeftModel.from_pretrained(model, str(path))
    step = peft_model.prepare_inputs_for_generation
    with pytest.warns(UserWarning, match="not needed with this PEFT"):
        assert cram_harness.fix_peft_generate(peft_model) is peft_model
    assert peft_model.prepare_inputs_for_generation == step  # untouched
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cram_harness.fix_peft_generate(PeftModel.from_pretrained(model, str(path)))


@pytest.mark.parametrize("use_cache", [True, False])
def test_the_fix_decodes_on_both_sides_of_the_rename(crammed, use_cache):
    assert peft_decodes(crammed, fix=True, use_cache=use_cache)


@pytest.mark.skipif(peft_generate.peft_reads_cache(), reason="the fix does nothing here")
def test_the_fix_leaves_the_base_models_generate_alone(crammed):
    """After a fixed PEFT generate, the base model's own cached generate matches its uncached
    one (the old name is shown to PEFT's step only), and fixing twice changes nothing."""
    from peft import PeftModel

    model, _, path = crammed
    peft_model = cram_harness.fix_peft_generate(PeftModel.from_pretrained(model, str(path)))
    step = peft_model.prepare_inputs_for_generation
    assert cram_harness.fix_peft_generate(peft_model).prepare_inputs_for_generation is step
    seed = torch.tensor([[5, 6]])
    peft_model.generate(input_ids=seed, do_sample=False, max_new_tokens=4, pad_token_id=0)
    base = peft_model.get_base_model()
    cached, plain = (base.generate(input_ids=seed, do_sample=False, max_new_tokens=6,
                                   pad_token_id=0, use_cache=c) for c in (True, False))
    assert cached.tolist() == plain.tolist()


def test_decode_adapter_is_the_top_level_way(crammed):
    model, result, path = crammed
    decoded = cram_harness.decode_adapter(path, model, make_word_tokenizer())
    assert decoded.matches and decoded.token_ids == result.token_ids
    assert decoded.text == make_word_tokenizer().decode(result.token_ids,
                                                        skip_special_tokens=True)
    assert decoded.text.startswith("she was at the")


@pytest.mark.parametrize("use_cache", [True, False])
def test_loading_and_generating_is_quiet(crammed, use_cache):
    """PEFT's load and generate show none of the library warnings a user can do nothing
    about (PEFT's "position ids are not supported" at each generate, its call of a
    deprecated transformers property at each load); ours are silenced once imported."""
    from cram_harness.integrations.peft import quiet_peft_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # what was shown before is shown again here
        quiet_peft_warnings()
        assert peft_decodes(crammed, fix=use_cache and BROKEN_PAIR, use_cache=use_cache)
    assert [str(w.message) for w in caught] == []
