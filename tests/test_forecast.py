"""The forecast said before a text is crammed: the text's own CE against the gain a vector of
the model holds (measured, published or estimated), never a refusal."""

import math

import pytest

from cram_harness import forecast
from tests.tiny import make_tiny_model


def results(value, date, name="run.json"):
    return {"date": date, "results_file": name,
            "results": {"info_gain_gutenberg": {forecast.GAIN_KEY: value},
                        "capacity_gutenberg": {"decoding_capacity,none": 8}}}


def test_the_gain_is_measured_else_published_else_estimated():
    measured = forecast.model_gain("smollm2-135m", 576, [results(90.0, 1.0, "old.json"),
                                                         results(97.0, 2.0, "new.json")])
    assert measured.nats == 97.0 and "new.json" in measured.source
    published = forecast.model_gain("hf:meta-llama/Llama-3.2-1B@main", 2048, [])
    assert published.nats == 2120.0 and "Kuratov" in published.source
    assert forecast.model_gain("smollm2-135m", 576).nats == pytest.approx(168 * math.log(2))
    guessed = forecast.model_gain("hf:someone/new-model", 1000, [results(float("nan"), 3.0)])
    assert guessed.nats == 200.0 and "estimate" in guessed.source


def test_the_forecast_names_the_vectors_a_text_needs():
    gain = forecast.Gain(100.0, "measured")
    easy = forecast.forecast(80.0, tokens=12, gain=gain)
    assert easy.likely and easy.vectors_needed == 1 and "likely to decode from 1" in easy.line()
    hard = forecast.forecast(250.0, tokens=30, gain=gain)
    assert not hard.likely and hard.vectors_needed == 3
    assert "unlikely" in hard.line() and "--mem-tokens 3" in hard.line()
    assert forecast.forecast(250.0, tokens=30, gain=gain, n_mem=3).likely
    assert not forecast.forecast(float("nan"), tokens=30, gain=gain).known  # a broken model


def test_text_nats_is_the_summed_ce_after_the_seed():
    model = make_tiny_model("llama")
    tokens = [5, 9, 12, 7, 30]
    total = forecast.text_nats(model, tokens)
    assert total > forecast.text_nats(model, tokens[:3]) > 0


def test_cram_says_before_any_step_what_is_unlikely_and_crams_it_anyway():
    import cram_harness
    from tests.tiny import make_word_tokenizer

    model, tok = make_tiny_model("llama"), make_word_tokenizer()
    text = "she was at the door and the little man said to her that it was"
    with pytest.warns(UserWarning, match="unlikely to decode from 1 vector: try n_mem="):
        (result,) = cram_harness.cram(model, text, tokenizer=tok, max_steps=2)
    assert result.steps == 2  # a forecast never refuses a text


def test_export_prints_its_forecast_before_the_first_step(tiny_model_dir, tmp_path):
    """Read while the process runs: the forecast is there before optimization ends."""
    import subprocess
    import sys
    import time

    (tmp_path / "text.txt").write_text("she was at the door and the little man said to her")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cram_harness", "export", "--model", tiny_model_dir, "--text",
         str(tmp_path / "text.txt"), "--out", str(tmp_path / "adapter"), "--max-steps",
         "100000", "--min-margin", "1e9"], stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        lines = iter(proc.stderr.readline, "")  # each blocks until a line is written
        said = next(line for line in lines if line.startswith("forecast:"))
        assert said.startswith("forecast: unlikely to decode from 1 vector: try --mem-tokens")
        assert "estimate from d_model 64" in said
        time.sleep(1)
        assert proc.poll() is None  # still optimizing: 100000 steps take minutes
    finally:
        proc.kill()
        proc.wait()
