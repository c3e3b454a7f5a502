"""Bad input, round three (issue #22): no command destroys what a user already has, and every
limit is named before any model work. Each case was exit 0 over lost data, or a raw exception
(IndexError, SafetensorError, MarkupError) before. The rule for all of them: one line that says
what was wrong and what to do, exit code 2, and every file that existed before is
byte-for-byte the same after."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import record
from tests.helpers import RUN, assert_one_error_line, run_cli, write_results


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` by its path, with its bytes: compared before and after."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def results_dir(tmp_path) -> Path:
    """A results directory as a run leaves it: records, a results file and a samples file."""
    res = tmp_path / "RES"
    model = res / "tiny"
    write_results(model / "results_2026-01-01T00-00-00.json")
    (model / "records.jsonl").write_text(json.dumps(record("k1")) + "\n")
    (model / "samples_capacity_x_2026-01-01T00-00-00.jsonl").write_text("{}\n")
    (model / "vectors").mkdir()
    (model / "vectors" / "k1.safetensors").write_bytes(b"vectors")
    return res


# --- data loss ------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["tiny/records.jsonl", "tiny/results_2026-01-01T00-00-00.json",
                                    "tiny/samples_capacity_x_2026-01-01T00-00-00.jsonl",
                                    "tiny/vectors/k1.safetensors", "notes.txt"])
@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_leaderboard_never_writes_over_a_file_it_did_not_write(target, fmt, results_dir,
                                                                capsys):
    (results_dir / "notes.txt").write_text("my notes, not a leaderboard\n")
    before = snapshot(results_dir)
    code, _, err = run_cli(["leaderboard", str(results_dir), "--format", fmt, "--output",
                            str(results_dir / target)], capsys)
    line = assert_one_error_line(code, err, str(results_dir / target))
    assert "--output" in line
    assert snapshot(results_dir) == before


@pytest.mark.parametrize("fmt", ["csv", "markdown", "html", "table"])
def test_leaderboard_replaces_its_own_output(fmt, results_dir, tmp_path, capsys):
    out = tmp_path / f"board.{fmt}"
    for _ in range(2):  # the second writes over the first
        code, _, err = run_cli(["leaderboard", str(results_dir), "--format", fmt, "--output",
                                str(out)], capsys)
        assert code == 0, err
    code, _, err = run_cli(["leaderboard", str(results_dir), "--format", "csv", "--output",
                            str(out)], capsys)  # and another format over it
    assert code == 0, err
    assert out.read_text().startswith("model,dataset")


def test_report_never_writes_over_a_page_it_did_not_write(results_dir, tmp_path, capsys):
    out = tmp_path / "site"
    out.mkdir()
    (out / "report.html").write_text("<html>my own page</html>")
    before = snapshot(out)
    code, _, err = run_cli(["report", str(results_dir), "-o", str(out)], capsys)
    assert_one_error_line(code, err, str(out / "report.html"))
    assert snapshot(out) == before


@pytest.fixture
def lora_folder(tmp_path) -> Path:
    """A LoRA training folder, as PEFT's trainer leaves it."""
    lora = tmp_path / "lora"
    (lora / "checkpoint-500").mkdir(parents=True)
    (lora / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (lora / "adapter_model.safetensors").write_bytes(b"lora weights")
    (lora / "notes.md").write_text("lr sweep, run 3\n")
    (lora / "checkpoint-500" / "optimizer.pt").write_bytes(b"state")
    return lora


def test_export_never_deletes_another_adapter(lora_folder, tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    before = snapshot(lora_folder)
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(lora_folder),
                            "--max-steps", "2"], capsys)
    assert_one_error_line(code, err, str(lora_folder))
    assert snapshot(lora_folder) == before


def test_export_replaces_its_own_adapter_and_no_other(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    argv = ["export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"), "--out",
            str(tmp_path / "adapter"), "--max-steps", "2"]
    for _ in range(2):  # a cram adapter it made itself is replaced whole
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    (tmp_path / "adapter" / "my-notes.txt").write_text("keep me")  # now it holds more
    before = snapshot(tmp_path / "adapter")
    code, _, err = run_cli(argv, capsys)
    assert "my-notes.txt" in assert_one_error_line(code, err, str(tmp_path / "adapter"))
    assert snapshot(tmp_path / "adapter") == before


def test_a_damaged_warm_start_is_run_again_with_one_warning(tiny_model_dir, books, tmp_path,
                                                            capsys, recwarn):
    out = tmp_path / "results"
    argv = ["--model", tiny_model_dir, *RUN, "--protocol", "fast", "--data-files", books,
            "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (records,) = out.rglob("records.jsonl")
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    # as if stopped after length 4: its vectors are the warm starts of length 8, still to run
    records.write_text("".join(json.dumps(r) + "\n" for r in lines if r["length"] == 4))
    climbed = {r["sample_id"] for r in lines if r["length"] == 8}
    warm = next(r["key"] for r in lines if r["length"] == 4 and r["sample_id"] in climbed)
    vectors = records.parent / "vectors" / f"{warm}.safetensors"
    vectors.write_bytes(vectors.read_bytes()[:-9])  # truncated
    for _ in range(2):  # the rerun heals it: the next one has nothing left to warn about
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    warned = [str(w.message) for w in recwarn if vectors.name in str(w.message)]
    assert len(warned) == 1 and "damaged" in warned[0] and "runs again" in warned[0], warned
    from safetensors.torch import load_file

    assert load_file(str(vectors))["memory"].shape[0] == 1


# --- limits named before work starts --------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fails the test if any optimization starts: the limit must be named before it."""
    from cram_harness.engine import run

    def work(*args, **kwargs):
        pytest.fail("optimization started")

    monkeypatch.setattr(run, "cram_token_ids", work)


@pytest.fixture
def long_text(tmp_path) -> Path:
    from tests.conftest import word_sentences

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
    from cram_harness.errors import CramError
    from tests.conftest import make_tiny_model, make_word_tokenizer

    with pytest.raises(CramError, match="300 .* leave no room .* context of 256"):
        cram_harness.cram(make_tiny_model("gpt2"), "she was at the", n_mem=300,
                          tokenizer=make_word_tokenizer())


def test_the_api_names_the_context_for_a_long_text(long_text):
    import cram_harness
    from cram_harness.errors import CramError
    from tests.conftest import make_tiny_model, make_word_tokenizer

    with pytest.raises(CramError, match="360 tokens.* context of 256"):
        cram_harness.cram(make_tiny_model("gpt2"), long_text.read_text(), max_steps=1,
                          tokenizer=make_word_tokenizer())


@pytest.mark.parametrize("edit, message", [
    ("num_tokens", "holds 1 vector(s) and a text of 1000 tokens"),
    ("vectors", "holds 300 vector(s) and a text of 4 tokens"),
])
def test_decode_names_the_context_when_an_adapter_does_not_fit(edit, message, tiny_model_dir,
                                                               tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(tmp_path / "a"),
                            "--max-steps", "2"], capsys)
    assert code == 0, err
    if edit == "num_tokens":
        info = json.loads((tmp_path / "a" / "cram.json").read_text())
        (tmp_path / "a" / "cram.json").write_text(json.dumps({**info, "num_tokens": 1000}))
    else:
        import torch
        from safetensors.torch import save_file

        save_file({"prompt_embeddings": torch.zeros(300, 64)},
                  str(tmp_path / "a" / "adapter_model.safetensors"))
    code, _, err = run_cli(["decode", str(tmp_path / "a"), "--model", tiny_model_dir], capsys)
    assert "context of 256" in assert_one_error_line(code, err, message)


def test_a_limit_far_beyond_the_data_is_refused_before_any_text_is_built(tmp_path, capsys,
                                                                         monkeypatch):
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    code, _, err = run_cli(["--model", "smollm2-135m", "--tasks", "capacity_random",
                            "--limit", "1e12", "--output-path", str(tmp_path / "r")], capsys)
    assert_one_error_line(code, err, "give --limit 4000 or less")


# --- numbers that make no sense, refused the same way everywhere ----------------------------

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
    from cram_harness.errors import CramError

    with pytest.raises(CramError, match=f"^{name}= is "):
        CramConfig(**{name: value})
    CramConfig(lr=0.3, max_steps=10, min_margin=0.0, seed=-1)


def test_the_api_refuses_a_nan_lr_as_called():
    import cram_harness
    from cram_harness.errors import CramError
    from tests.conftest import make_tiny_model, make_word_tokenizer

    with pytest.raises(CramError, match="lr= is nan"):
        cram_harness.cram(make_tiny_model("gpt2"), "she was at the", lr=float("nan"),
                          max_steps=2, tokenizer=make_word_tokenizer())


# --- files a user points at -----------------------------------------------------------------


def _copy_model(tiny_model_dir: str, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def test_truncated_weights_name_the_file(tiny_model_dir, tmp_path, capsys):
    model = _copy_model(tiny_model_dir, tmp_path)
    weights = model / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a partial download
    code, _, err = run_cli(["decode", "nowhere", "--model", str(model)], capsys)
    line = assert_one_error_line(code, err, f"{weights} is damaged or truncated")
    assert "download it again" in line


def test_a_damaged_cache_entry_says_to_delete_it(tiny_model_dir, tmp_path, capsys,
                                                 monkeypatch):
    import hashlib
    import shutil

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 60)
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    monkeypatch.setenv("CRAM_HARNESS_CACHE", str(tmp_path / "cache"))
    entry = tmp_path / "cache" / "models" / f"m-{key.hexdigest()[:16]}"
    shutil.copytree(tiny_model_dir, entry)
    (entry / "model.safetensors").write_bytes(b"\x10\0\0\0\0\0\0\0{")  # cut off mid-header
    code, _, err = run_cli(["decode", "nowhere", "--model", f"gguf:{gguf}"], capsys)
    line = assert_one_error_line(code, err, f"{entry / 'model.safetensors'} is damaged")
    assert f"delete the cache entry {entry}" in line


def test_a_model_folder_without_a_tokenizer_says_so(tiny_model_dir, tmp_path, capsys):
    model = _copy_model(tiny_model_dir, tmp_path)
    for file in model.glob("tokenizer*"):
        file.unlink()
    code, _, err = run_cli(["decode", "nowhere", "--model", str(model)], capsys)
    assert_one_error_line(code, err, f"{model} has a model but no tokenizer")


def test_a_hub_spec_without_network_answers_within_seconds(tmp_path, capsys, monkeypatch):
    import time

    from huggingface_hub import constants

    import cram_harness.models.load as models

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as a user without the variable
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                  "all_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    assert not models.hub_reachable()
    start = time.time()
    code, _, err = run_cli(["decode", "nowhere", "--model", "hf:nobody/nothing-here"], capsys)
    assert_one_error_line(code, err, "the Hub is not reachable from here")
    assert time.time() - start < 15


def _include(kind: str, tmp_path: Path) -> tuple[Path, str]:
    """(the --include-path to give, what its line says) for each kind of bad include path."""
    base = tmp_path / "inc"
    base.mkdir()
    if kind == "folder-named-yaml":
        (base / "mine.yaml").mkdir()
        return base, f"{base / 'mine.yaml'} is a directory named like a task file"
    if kind == "symlink-loop":
        (base / "loop").symlink_to(base / "loop")
        return base / "loop", "cannot be followed"
    if kind == "yaml-symlink-loop":
        (base / "self.yaml").symlink_to(base / "self.yaml")
        return base, f"{base / 'self.yaml'}: cannot be read as a task file"
    if kind == "missing":
        return base / "nowhere", "does not exist"
    (base / "mine.yaml").write_text("task: mine\n")
    return base / "mine.yaml", f"is a file: give the directory of task YAML that holds it ({base})"


@pytest.mark.parametrize("kind", ["folder-named-yaml", "symlink-loop", "yaml-symlink-loop",
                                  "missing", "a-file"])
@pytest.mark.parametrize("command", [["ls", "tasks"], ["--model", "x", "--tasks", "mine"]])
def test_a_bad_include_path_is_named(kind, command, tmp_path, capsys):
    path, message = _include(kind, tmp_path)
    code, _, err = run_cli([*command, "--include-path", str(path)], capsys)
    line = assert_one_error_line(code, err, message)
    assert str(path) in line and "unknown task" not in line


def test_names_and_paths_with_markup_characters_print_as_text(tiny_model_dir, books, tmp_path,
                                                              capsys):
    import shutil

    from tests.helpers import flat

    model = tmp_path / "m[" / "b]"  # "[/b]" in the path: a closing tag to rich
    shutil.copytree(tiny_model_dir, model)
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "mine.yaml").write_text(f"task: mine\nkind: capacity\ndataset: 'd[/i]'\n"
                                     f"source: {{kind: local, path: '{books}'}}\n"
                                     "lengths: [4]\nnum_samples: 1\n")
    out = tmp_path / "res[" / "x]"
    argv = ["--model", str(model), "--tasks", "mine", "--include-path", str(tasks),
            "--max-steps", "2", "--device", "cpu", "--output-path", str(out)]
    for _ in range(2):  # the rerun too
        code, stdout, err = run_cli(argv, capsys)
        assert code == 0, err
        assert str(out) in flat(stdout) and "d[/i]" in flat(stdout)
    results = sorted(out.rglob("results_*.json"))[-1]
    code, stdout, err = run_cli(["show", str(results)], capsys)
    assert code == 0, err
    assert str(results) in flat(stdout)
    code, stdout, err = run_cli(["leaderboard", str(out)], capsys)
    assert code == 0, err
    assert "d[/i]" in stdout


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x00\x00", "stdin is a binary file"),
    ("Caf\u00e9 au lait.".encode("latin-1"), "stdin is not UTF-8 (bad byte at offset 3)"),
    (b"  \n", "stdin is empty or only whitespace"),
])
def test_bad_text_on_stdin_is_one_line(data, message, tiny_model_dir, tmp_path, capsys,
                                       monkeypatch):
    import io
    import sys

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text", "-", "--out",
                            str(tmp_path / "a")], capsys)
    assert_one_error_line(code, err, message)


def test_a_nul_only_file_is_one_line(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "nul.txt").write_bytes(b"\x00" * 64)
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "nul.txt"), "--out", str(tmp_path / "a")], capsys)
    assert_one_error_line(code, err, f"{tmp_path / 'nul.txt'} is a binary file")


@pytest.mark.parametrize("texts, message", [
    (b"she was at the", None),  # bytes of UTF-8 text: read as the text
    (b"\xff\xfe she was", "the text given as bytes is not UTF-8"),
    ("\x00\x00\x00", "the text holds NUL characters"),
    ([b"she was at the"], None),
    ([3, 4], "a text is int, not str"),
])
def test_the_api_reads_bytes_as_files_are_read(texts, message):
    from cram_harness.errors import CramError
    from cram_harness.models.tokens import encode_text
    from tests.conftest import make_word_tokenizer

    items = texts if isinstance(texts, list) else [texts]
    if message is None:
        assert [encode_text(make_word_tokenizer(), t) for t in items]
    else:
        with pytest.raises(CramError, match=message):
            [encode_text(make_word_tokenizer(), t) for t in items]


@pytest.mark.parametrize("override, message", [
    ({"results": {"capacity_x": {"decoding_capacity,none": "eight"}}},
     "key 'results' -> 'capacity_x' -> 'decoding_capacity,none' is 'eight', expected a number"),
    ({"results": {"capacity_x": {"token_gain,none": [1], "token_gain_std,none": 1.0}}},
     "'token_gain,none' is [1]"),
    ({"results": {"capacity_x": {"decoding_capacity,none": True}}}, "is True"),
    ({"model_info": {"d_model": "wide"}}, "key 'model_info' -> 'd_model' is 'wide'"),
])
@pytest.mark.parametrize("command", ["show", "leaderboard", "report"])
def test_metric_values_of_the_wrong_type_name_file_and_key(override, message, command,
                                                           tmp_path, capsys):
    bad = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json", **override)
    extra = ["-o", str(tmp_path / "site")] if command == "report" else []
    code, _, err = run_cli([command, str(bad), *extra], capsys)
    line = assert_one_error_line(code, err, message)
    assert str(bad) in line


# --- as a user runs them: real processes ----------------------------------------------------


def test_the_data_loss_cases_as_processes(results_dir, lora_folder, tmp_path):
    """The two commands that destroyed data, and a number export took, as real processes:
    exit 2, stdout empty, one line on stderr, every file as it was."""
    import subprocess
    import sys

    from tests.helpers import env

    (tmp_path / "text.txt").write_text("she was at the")
    before = snapshot(tmp_path)
    cases = [
        (["leaderboard", str(results_dir), "--format", "csv", "--output",
          str(results_dir / "tiny" / "records.jsonl")], "a records file"),
        (["export", "--model", "smollm2-135m", "--text", str(tmp_path / "text.txt"), "--out",
          str(lora_folder)], "is not a cram adapter that export wrote"),
        (["export", "--model", "smollm2-135m", "--text", str(tmp_path / "text.txt"), "--out",
          str(tmp_path / "new"), "--lr", "nan"], "--lr is nan"),
    ]
    for argv, message in cases:
        proc = subprocess.run([sys.executable, "-m", "cram_harness", *argv],
                              capture_output=True, text=True, env=env(), timeout=120)
        assert proc.returncode == 2 and not proc.stdout, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert snapshot(tmp_path) == before
