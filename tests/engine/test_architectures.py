"""The architecture matrix: every family cram_harness.models.families lists, on a tiny random
model of its own architecture, through the whole engine. Attention models, a hybrid (Jamba),
state-space models (Mamba, Mamba2, FalconMamba) and a recurrent one (RecurrentGemma): each
keeps what it has read its own way, which greedy decoding and the adapter must follow."""

import pytest
import torch

from cram_harness.api import decode_adapter
from cram_harness.engine.adapter import init_memory, pad_right
from cram_harness.engine.decode import cache_argument, greedy_decode
from cram_harness.engine.loop import CramConfig
from cram_harness.engine.measure import text_logits
from cram_harness.engine.schedule import base_stats, cram_token_ids
from cram_harness.integrations.peft import save_adapter
from cram_harness.integrations.peft_generate import peft_cache_name
from cram_harness.models.families import FAMILIES
from tests.helpers import EARLY_STEPS, EARLY_TOLERANCE, losses_by_step
from tests.tiny import FAMILY_CONFIGS, make_family_model, make_word_tokenizer

pytestmark = pytest.mark.versions  # each release changes some family's cache
NAMES = [family.model_type for family in FAMILIES]
CONFIG = CramConfig(max_steps=300, lr=0.1, dtype="fp32")


def test_every_listed_family_has_a_tiny_model():
    assert sorted(FAMILY_CONFIGS) == sorted(NAMES)


def holdable_texts(model, lengths=(7, 4)) -> list[list[int]]:
    """Texts one vector can hold: what the model itself decodes from random vectors, so a
    vector that gives each exists. Kept only where the model alone does not already predict
    them (accuracy below 1 without the vector), and without special tokens after the seed, as
    a tokenizer gives texts (PEFT's generate holds EOS back until min_new_tokens)."""
    texts = []
    for seed in range(100, 140):
        length = lengths[len(texts)]
        mem = init_memory(model, 1, [seed])  # as far from zero as the optimizer starts
        text = [1] + greedy_decode(model, mem, torch.tensor([[1]]), length - 1)[0].tolist()
        if min(text[1:]) > 2 and base_stats(model, [text], "fp32")[1][0] < 1.0:
            texts.append(text)
        if len(texts) == len(lengths):
            return texts
    raise AssertionError("the tiny model predicts every text it decodes without a vector")


@pytest.fixture(scope="module", params=NAMES)
def family(request):
    model = make_family_model(request.param)
    texts = holdable_texts(model)
    crammed = cram_token_ids(model, texts, CONFIG)  # one batch, as the estimate sizes it
    return model, texts, crammed


def test_cram_holds_each_text_and_decodes_it(family):
    model, texts, crammed = family
    for text, result in zip(texts, crammed):
        assert result.base_accuracy < 1.0
        assert result.best_accuracy == 1.0, (type(model).__name__, text, result.steps)
        assert result.greedy_exact and result.first_mismatch is None


def test_greedy_decode_is_the_teacher_forced_argmax(family):
    model = family[0]
    mem = init_memory(model, 2, [1, 2, 3])  # three texts, two vectors each
    seeds = torch.tensor([[1], [4], [9]])
    decoded = greedy_decode(model, mem, seeds, 14)  # longer than the sliding windows
    ids = torch.cat([seeds, decoded], dim=1)
    with torch.no_grad():
        argmax = text_logits(model, ids, torch.ones_like(ids), mem).argmax(-1)
    assert torch.equal(argmax, decoded)


def test_a_padded_batch_agrees_with_one_text_at_a_time(family):
    """Right padding follows a text's last token, so no real token reads it, state-space
    and recurrent models included: the parity tests' agreement over the first steps."""
    model, texts, _ = family
    # lr 0.05: at 0.1 Mamba's loss overshoots at the fifth step and an AVX2 CPU's rounding
    # grows past the tolerance there (1.4e-4; 1.1e-5 at 0.05, every family below 4e-6 else)
    early = CramConfig(lr=0.05, max_steps=EARLY_STEPS, min_margin=float("inf"))
    batched = losses_by_step(model, texts, early)
    for i, text in enumerate(texts):
        alone = [step[0] for step in losses_by_step(model, [text], early)]
        assert [step[i] for step in batched] == pytest.approx(alone, rel=EARLY_TOLERANCE)
    ids, mask = pad_right(texts, pad_id=0, device="cpu")  # the short text is padded
    assert not bool(mask.all())


def test_measuring_in_chunks_agrees_with_the_whole_logits(family, monkeypatch):
    """Where the logits would be large, a step measures them chunk by chunk through the
    model's body and head (engine/measure.py); a family whose head does more than a linear
    layer (RecurrentGemma's soft cap) keeps the whole logits."""
    from cram_harness.engine import measure

    model, texts, _ = family
    ids, mask = pad_right(texts, pad_id=0, device="cpu")
    mem = init_memory(model, 1, [1, 2])
    whole = measure.text_stats(model, ids, mask, mem)
    monkeypatch.setattr(measure, "LOGITS_BUDGET", 1)
    chunked = measure.text_stats(model, ids, mask, mem)
    assert torch.allclose(chunked.loss, whole.loss, rtol=1e-5)
    assert torch.equal(chunked.accuracy, whole.accuracy)


def test_the_adapter_reloads_and_decodes_its_text(family, tmp_path):
    from peft import PeftModel

    model, texts, crammed = family
    result = crammed[0]
    path = save_adapter(tmp_path / "adapter", result.memory, model,
                        {**result.record(), "num_new_tokens": result.num_predicted})
    assert decode_adapter(path, model, make_word_tokenizer()).token_ids == texts[0]
    card = (path / "README.md").read_text()
    assert "use_cache=False" in card
    assert ("`cache_params`" in card) == (
        cache_argument(model) == "cache_params")

    seed = torch.tensor([texts[0][:1]])
    n = len(texts[0]) - 1
    peft_model = PeftModel.from_pretrained(model, str(path))

    def peft_generate(**options) -> list[int]:
        out = peft_model.generate(input_ids=seed, attention_mask=torch.ones_like(seed),
                                  do_sample=False, min_new_tokens=n, max_new_tokens=n, **options)
        return out[0].tolist()[-len(texts[0]):]

    # Without a cache PEFT feeds the prompt and the text whole at every token: right for
    # every family. With one, PEFT tells its first step by the cache it hands the model: a
    # model that takes its cache under that name decodes right with it too (every family
    # with PEFT >= 0.22 on transformers >= 5.24, where all of them say `cache`).
    assert peft_generate(use_cache=False) == texts[0]
    if cache_argument(model) == peft_cache_name():
        assert peft_generate() == texts[0]


class NoCacheLM(torch.nn.Module):
    """A causal LM whose forward takes no cache, as some remote-code models are."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.config, self.device = inner, inner.config, inner.device

    def get_input_embeddings(self):
        return self.inner.get_input_embeddings()

    def forward(self, inputs_embeds, attention_mask=None):
        return self.inner(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                          use_cache=False)


def test_a_model_without_a_cache_is_decoded_by_running_it_again():
    model = make_family_model("llama")
    mem, seeds = init_memory(model, 1, [5, 6]), torch.tensor([[1], [3]])
    with pytest.warns(UserWarning, match="keeps no cache"):
        rerun = greedy_decode(NoCacheLM(model), mem, seeds, 10)
    assert torch.equal(rerun, greedy_decode(model, mem, seeds, 10))
