"""Numbers that make no sense (NaN, inf, zero steps, a float where a whole number goes) and
lengths that do not fit the context are refused the same way by `run`, `export` and the Python
API: one line naming the option, before any model work; a text shorter than a length, or a
length past the context, is counted and said, not an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cram_harness.errors import CramError
from tests.helpers import (
    RUN,
    assert_one_error_line,
    fast_run,
    flat,
    run_cli,
)
from tests.tiny import make_word_tokenizer, word_sentences

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any optimization starts: the limit must be named before it."""
    from cram_harness.engine import schedule

    def work(*args, **kwargs):
        pytest.fail("optimization started")

    monkeypatch.setattr(schedule, "cram_token_ids", work)


@pytest.fixture
def long_text(tmp_path) -> Path:

    path = tmp_path / "long.txt"
    path.write_text(word_sentences(40))  # 360 tokens of the word tokenizer; the context is 256
    return path


@pytest.mark.parametrize("flags, message", [
    ([], "the text has 360 tokens, and with 1 [mem] vector(s) that does not fit in the "
         "model's context of 256 positions: cut it to at most 255 tokens"),
    (["--max-tokens", "8", "--mem-tokens", "300"], "300 [mem] vector(s) leave no room for a "
                                                   "text in the model's context of 256"),
    (["--max-tokens", "250", "--mem-tokens", "10"], "250 tokens + 10 [mem] vector(s) do not "
                                                    "fit in the model's context of 256"),
])


def test_export_names_the_context_before_any_work(flags, message, long_text, tiny_model_dir,
                                                  tmp_path, capsys, no_work):
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text", str(long_text),
                            "--out", str(tmp_path / "a"), *flags], capsys)
    assert_one_error_line(code, err, message)
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("mem", ["255", "300"])
def test_run_names_the_context_for_mem_tokens_before_any_work(mem, tiny_model_dir, books,
                                                              tmp_path, capsys, no_work):
    code, _, err = run_cli(["--model", tiny_model_dir, *RUN, "--mem-tokens", mem,
                            "--data-files", books, "--output-path", str(tmp_path / "r")],
                           capsys)
    assert_one_error_line(code, err, f"{mem} [mem] vectors leave no room for a text in")
    assert "context of 256 positions" in err and "--mem-tokens 254 or less" in err


def test_the_api_names_the_context_for_n_mem():
    import cram_harness
    from tests.tiny import make_tiny_model

    with pytest.raises(CramError, match="300 .* leave no room .* context of 256"):
        cram_harness.cram(make_tiny_model("gpt2"), "she was at the", n_mem=300,
                          tokenizer=make_word_tokenizer())


def test_the_api_names_the_context_for_a_long_text(long_text):
    import cram_harness
    from tests.tiny import make_tiny_model

    with pytest.raises(CramError, match="360 tokens.* context of 256"):
        cram_harness.cram(make_tiny_model("gpt2"), long_text.read_text(), max_steps=1,
                          tokenizer=make_word_tokenizer())


def test_a_limit_far_beyond_the_data_is_refused_before_any_text_is_built(tmp_path, capsys,
                                                                         monkeypatch):
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    code, _, err = run_cli(["--model", "smollm2-135m", "--tasks", "capacity_random",
                            "--limit", "1e12", "--output-path", str(tmp_path / "r")], capsys)
    assert_one_error_line(code, err, "give --limit 4000 or less")


NUMBERS = [  # (flag, value, what the line says), for run and export alike
    ("--lr", "nan", "--lr is nan: expected a finite number > 0"),
    ("--lr", "inf", "--lr is inf"),
    ("--lr", "1e999", "--lr is inf"),  # overflows to inf when parsed
    ("--lr", "0", "--lr"),
    ("--min-margin", "nan", "--min-margin is nan: expected a number >= 0 (inf: never"),
    ("--min-margin", "-1", "--min-margin is -1.0"),
    ("--max-steps", "0", "--max-steps"),
    ("--max-steps", "3.5", "'3.5' is not a valid integer"),
    ("--max-steps", str(10**20), f"--max-steps is {10**20}"),
    ("--seed", str(10**30), f"--seed is {10**30}"),
]

RUN_ONLY = [
    ("--batch-size", str(10**12), f"--batch-size is {10**12}"),
    ("--stop-below", "1.5", "--stop-below is 1.5: expected an accuracy in (0, 1]"),
    ("--stop-below", "-0.1", "--stop-below is -0.1"),
    ("--stop-below", "nan", "--stop-below is nan"),
    ("--temperature", "inf", "--temperature is inf"),
    ("--limit", "nan", "--limit takes a whole number of texts"),
]

EXPORT_ONLY = [
    ("--max-tokens", "1", "--max-tokens is 1"),
    ("--mem-tokens", "0", "--mem-tokens is 0"),
]


@pytest.mark.parametrize("flag, value, message", NUMBERS + RUN_ONLY,
                         ids=[f"{f}={v}" for f, v, _ in NUMBERS + RUN_ONLY])


def test_run_refuses_numbers_that_make_no_sense(flag, value, message, tmp_path, capsys,
                                                monkeypatch):
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    code, _, err = run_cli(["--model", "smollm2-135m", "--tasks", "capacity_random",
                            f"{flag}={value}", "--output-path", str(tmp_path / "r")], capsys)
    assert_one_error_line(code, err, message)


@pytest.mark.parametrize("flag, value, message", NUMBERS + EXPORT_ONLY,
                         ids=[f"{f}={v}" for f, v, _ in NUMBERS + EXPORT_ONLY])


def test_export_refuses_numbers_that_make_no_sense(flag, value, message, tmp_path, capsys,
                                                   monkeypatch):
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    (tmp_path / "text.txt").write_text("she was at the")
    code, _, err = run_cli(["export", "--model", "smollm2-135m", "--text",
                            str(tmp_path / "text.txt"), "--out", str(tmp_path / "a"),
                            f"{flag}={value}"], capsys)
    assert_one_error_line(code, err, message)
    assert not (tmp_path / "a").exists()


API_NUMBERS = [("lr", float("nan")), ("lr", float("inf")), ("min_margin", float("nan")),
               ("max_steps", 3.5), ("max_steps", 0), ("temperature", -1.0),
               ("patience", 2.0), ("seed", 10**30), ("weight_decay", float("nan"))]


@pytest.mark.parametrize("name, value", API_NUMBERS, ids=[f"{n}={v}" for n, v in API_NUMBERS])
def test_the_api_options_check_refuses_numbers_that_make_no_sense(name, value):
    from cram_harness.config import CramConfig

    with pytest.raises(CramError, match=f"^{name}= is "):
        CramConfig(**{name: value})
    CramConfig(lr=0.3, max_steps=10, min_margin=0.0, seed=-1)


def test_the_api_refuses_a_nan_lr_as_called():
    import cram_harness
    from tests.tiny import make_tiny_model

    with pytest.raises(CramError, match="lr= is nan"):
        cram_harness.cram(make_tiny_model("gpt2"), "she was at the", lr=float("nan"),
                          max_steps=2, tokenizer=make_word_tokenizer())


def test_text_shorter_than_a_length_is_counted_not_an_error(tiny_model_dir, books, tmp_path,
                                                            capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "4,64"  # the texts have about 54 tokens
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    (results,) = tmp_path.glob("*/results_*.json")
    (sweep,) = json.loads(results.read_text())["sweeps"]
    assert sweep["texts_too_short"] == {"64": 3} and sweep["samples"] == {"4": 3, "64": 0}
    assert "stopped at 64: no text is that long" in flat(out)
    assert "warning: pg19: no text is that long" in flat(err)


def test_a_length_above_the_context_is_dropped_with_a_warning(tiny_model_dir, books, tmp_path,
                                                              capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "4,300"
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    # past the context, the longest length that fits (255) stands in for the rest
    assert "warning: lengths are run up to 255, not 300" in flat(err)
    assert "context of 256" in flat(err)
    (results,) = tmp_path.glob("*/results_*.json")
    (sweep,) = json.loads(results.read_text())["sweeps"]
    assert sweep["samples"] == {"4": 3, "255": 0}  # the books are shorter than that
    assert sweep["stopped"] == {"length": 255, "reason": "no text is that long"}


@pytest.fixture
def every_length_too_long(tiny_model_dir, books, tmp_path, capsys):
    argv = fast_run(tiny_model_dir, books, tmp_path)
    argv[argv.index("4,8")] = "300,400"
    code, out, err = run_cli(argv, capsys)
    return code, out, err, tmp_path


def test_every_length_above_the_context_is_a_clear_outcome(every_length_too_long):
    """Nothing can be measured: a warning names the limit, the summary says where the sweep
    stopped and why, the results file says no sample was run; no optimization is done."""
    code, out, err, out_dir = every_length_too_long
    assert code == 0, err
    assert "context of 256" in flat(err)
    assert "stopped at 255: no text is that long" in flat(out)
    (results,) = out_dir.glob("*/results_*.json")
    data = json.loads(results.read_text())
    assert data["n-samples"]["capacity_pg19"]["effective"] == 0
    assert data["results"]["capacity_pg19"]["decoding_capacity,none"] is None
    assert not list(out_dir.glob("*/records.jsonl"))


def test_context_warning_keeps_its_words(every_length_too_long):
    code, out, err, _ = every_length_too_long
    assert "1 [mem] + a longer text do not fit in the context of 256" in flat(err)
