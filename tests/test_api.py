import pytest
import torch

import cram_harness
from cram_harness import metrics
from cram_harness.errors import CramError
from cram_harness.models.tokens import adds_bos, encode_text
from tests.tiny import make_tiny_model, make_word_tokenizer, word_text


def test_cram_reports_the_papers_metrics():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    texts = ["she was at the", word_text(12, seed=1)]
    results = cram_harness.cram(model, texts, tokenizer=tok, lr=0.3, max_steps=60)
    for text, r in zip(texts, results):
        assert r.num_tokens == len(text.split()) and r.num_predicted == r.num_tokens - 1
        # Measured again here with the model's own loss and a plain forward pass over the
        # returned vectors: the CE without them, and the accuracy of the best state.
        ids = torch.tensor([r.token_ids])
        with torch.no_grad():
            assert r.base_loss == pytest.approx(model(input_ids=ids, labels=ids).loss.item(),
                                                rel=1e-5)
            embeds = torch.cat([r.memory[None], model.get_input_embeddings()(ids)], dim=1)
            logits = model(inputs_embeds=embeds).logits[0, r.memory.shape[0]:-1]
        hits = (logits.argmax(-1) == ids[0, 1:]).float().mean().item()
        assert r.best_accuracy == pytest.approx(hits)
        # The paper's statistics: both gains times L; information gain from the run's lowest
        # CE, which is at most the CE of the best-accuracy state.
        assert r.token_gain == pytest.approx((r.best_accuracy - r.base_accuracy) * r.num_tokens)
        assert r.information_gain == pytest.approx((r.base_loss - r.min_loss) * r.num_tokens)
        assert r.min_loss <= r.best_loss
        assert r.information_gain_bits == pytest.approx(metrics.nats_to_bits(r.information_gain))
        assert r.greedy_exact == (r.first_mismatch is None) == (r.greedy_accuracy == 1.0)
        assert r.model_spec == "tiny-gpt2" and r.config["max_steps"] == 60
        rec = r.record()
        assert "memory" not in rec and rec["seed_token_ids"] == r.token_ids[:1]
    assert results[0].converged and results[0].greedy_exact


def test_greedy_mismatch_is_located():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (r,) = cram_harness.cram(model, word_text(40, seed=2), tokenizer=tok, lr=0.1, max_steps=3)
    assert not r.greedy_exact and 0 <= r.first_mismatch < r.num_predicted


def test_bos_tokenizer_seeds_with_bos():
    tok = make_word_tokenizer(add_bos=True)
    assert adds_bos(tok) and not adds_bos(make_word_tokenizer())
    the, man = tok.convert_tokens_to_ids(["the", "man"])
    # L counts BOS, as the paper's tokenizer(text, max_length=L, truncation=True) did
    assert encode_text(tok, "the man said", max_tokens=3) == [tok.bos_token_id, the, man]
    assert encode_text(make_word_tokenizer(), "the man said", max_tokens=2) == [the, man]


def test_short_text_is_used_whole_and_recorded():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (r,) = cram_harness.cram(model, "the man said", max_tokens=50, tokenizer=tok, max_steps=2)
    assert r.num_tokens == 3 and r.requested_tokens == 50


@pytest.mark.parametrize("text", ["", "   \n\t", "the"])
def test_texts_too_short_are_refused(text):
    with pytest.raises(CramError, match="empty|at least 2"):
        cram_harness.cram(make_tiny_model("gpt2"), text, tokenizer=make_word_tokenizer())


def test_limits_are_checked_before_any_work():
    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    with pytest.raises(CramError, match="context of 256 positions"):
        cram_harness.cram(model, "the man", max_tokens=300, tokenizer=tok)
    with pytest.raises(CramError, match=r"n_mem= is 0: expected a whole number of \[mem\]"):
        cram_harness.cram(model, "the man", n_mem=0, tokenizer=tok)
    with pytest.raises(CramError, match="bad engine option"):
        cram_harness.cram(model, "the man", tokenizer=tok, learning_rate=3)
    with pytest.raises(CramError, match="tokenizer"):
        cram_harness.cram(model, "the man")


def test_fp16_weights_are_refused_before_any_work():
    model = make_tiny_model("llama").half()
    with pytest.raises(CramError, match="fp16 weights are not supported"):
        cram_harness.cram(model, "she was at the door", tokenizer=make_word_tokenizer())


def test_misuse_at_the_api_boundary_is_one_cram_error(tiny_model_dir):
    """Wrong types and shapes are said where they are handed in, not deep inside."""
    from pathlib import Path

    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    with pytest.raises(CramError, match="a text or a list of texts, not None"):
        cram_harness.cram(model, None, tokenizer=tok)
    with pytest.raises(CramError, match="a text or a list of texts"):
        cram_harness.cram(model, ["the man", 3], tokenizer=tok)
    with pytest.raises(CramError, match="a loaded causal LM first, not a "):
        cram_harness.cram(tok, "the man", tokenizer=tok)
    width = model.get_input_embeddings().weight.shape[1]
    for init in (torch.zeros(1, 1, width + 1), torch.zeros(2, 1, width)):  # width; one text
        with pytest.raises(CramError, match=rf"need \(1, 1, {width}\)"):
            cram_harness.cram(model, "the man", tokenizer=tok, init=init, max_steps=1)
    with pytest.raises(CramError, match="a model spec is a string or a path, not int"):
        cram_harness.load_model(42)
    loaded, _ = cram_harness.load_model(Path(tiny_model_dir))  # a path is a directory's spec
    assert loaded.cram_spec == tiny_model_dir
