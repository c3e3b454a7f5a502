"""Bad input, round two: every input a user can hand us gets one line that says what was
wrong and what to do, and exit code 2; a damaged record is skipped with a warning and the run
finishes. Each case was a raw internal exception before (an AttributeError, an Errno, a
TypeError from deep inside)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import make_word_tokenizer, record
from tests.helpers import (
    RUN,
    Proc,
    assert_one_error_line,
    line_count,
    run_cli,
    whole_records,
    write_results,
)


@pytest.fixture
def adapter(tiny_model_dir, tmp_path, capsys):
    """An adapter exported from the tiny model; its cram.json is edited by each case."""
    (tmp_path / "text.txt").write_text("she was at the")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(tmp_path / "adapter"),
                            "--lr", "0.3", "--max-steps", "300"], capsys)
    assert code == 0, err
    return tmp_path / "adapter"


CRAM_JSON_EDITS = [
    ("fingerprint-a-string", lambda i: {**i, "base_model": "llama"}, "'base_model' is 'llama'"),
    ("num-tokens-a-word", lambda i: {**i, "num_tokens": "eight"}, "'num_tokens' is 'eight'"),
    ("no-seed", lambda i: {**i, "seed_token_ids": []}, "'seed_token_ids' is []"),
    ("seed-outside-the-vocabulary", lambda i: {**i, "seed_token_ids": [10**6]},
     "outside this model's vocabulary of 128"),
    ("nothing-to-decode", lambda i: {**i, "num_tokens": 1}, "'num_tokens' is 1"),
    ("a-list", lambda i: [i], "does not hold a JSON object"),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in CRAM_JSON_EDITS],
                         ids=[c[0] for c in CRAM_JSON_EDITS])
def test_an_edited_cram_json_is_one_line(edit, message, adapter, tiny_model_dir, capsys):
    info = json.loads((adapter / "cram.json").read_text())
    (adapter / "cram.json").write_text(json.dumps(edit(info)))
    code, _, err = run_cli(["decode", str(adapter), "--model", tiny_model_dir], capsys)
    line = assert_one_error_line(code, err, message)
    assert "cram.json" in line


@pytest.mark.parametrize("device, message", [("gpu", "unknown device 'gpu': this machine has"),
                                             ("mps", "device 'mps' is not on this machine"),
                                             ("cuda:3", "device 'cuda:3' is not on this")])
def test_a_device_this_machine_lacks_names_the_ones_it_has(device, message, tiny_model_dir,
                                                           capsys):
    code, _, err = run_cli(["decode", "nowhere", "--model", tiny_model_dir, "--device", device],
                           capsys)
    assert "cpu" in assert_one_error_line(code, err, message)


@pytest.mark.parametrize("out", [".", "{tmp}/file", "{tmp}/notes"])
def test_export_never_writes_over_what_is_not_an_adapter(out, tiny_model_dir, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("she was at the")
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me too")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text", "text.txt", "--out",
                            out.format(tmp=tmp_path), "--max-steps", "2"], capsys)
    assert_one_error_line(code, err, "give a new directory for the adapter")
    assert (tmp_path / "file").read_text() == "keep me"
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me too"
    assert (tmp_path / "text.txt").is_file()


@pytest.mark.parametrize("override, message", [
    ({"results": {"capacity_x": 3}}, "'results' is"),
    ({"model_name": None}, "'model_name' is missing"),
    ({"sweeps": [{"dataset": "x", "n_mem": 1, "mean_accuracy": {"eight": 1.0}}]}, "'sweeps'"),
])
@pytest.mark.parametrize("command", ["show", "leaderboard"])
def test_a_results_file_of_another_shape_is_named(override, message, command, tmp_path, capsys):
    bad = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json", **override)
    code, _, err = run_cli([command, str(bad)], capsys)
    line = assert_one_error_line(code, err, message)
    assert str(bad) in line and "not a cram-eval results file" in line


def test_a_foreign_results_file_is_skipped_and_the_rest_read(tmp_path, capsys, recwarn):
    write_results(tmp_path / "r" / "good" / "results_2026-01-01T00-00-00.json")
    write_results(tmp_path / "r" / "bad" / "results_2026-01-01T00-00-00.json", results=[1])
    code, out, err = run_cli(["leaderboard", str(tmp_path / "r"), "--format", "markdown"],
                             capsys)
    assert code == 0, err
    assert "| tiny | x |" in out
    (warning,) = [str(w.message) for w in recwarn]
    assert "bad/results_2026-01-01T00-00-00.json" in warning and "skipped" in warning


def test_leaderboard_output_under_a_file_is_one_line(tmp_path, capsys):
    good = write_results(tmp_path / "r" / "m" / "results_2026-01-01T00-00-00.json")
    (tmp_path / "FILE").write_text("keep me")
    for fmt in ("csv", "table"):
        code, _, err = run_cli(["leaderboard", str(good), "--format", fmt, "--output",
                                str(tmp_path / "FILE" / "x.csv")], capsys)
        assert_one_error_line(code, err, "is in the way")
    assert (tmp_path / "FILE").read_text() == "keep me"


@pytest.mark.parametrize("in_the_way", ["model-dir-a-file", "lock-a-directory",
                                        "records-a-directory"])
def test_something_in_the_way_of_the_results_is_one_line(in_the_way, tiny_model_dir, books,
                                                          tmp_path, capsys):
    out = tmp_path / "results"
    target = out / _slug(tiny_model_dir)
    if in_the_way == "model-dir-a-file":
        out.mkdir()
        target.write_text("keep me")
    else:
        target.mkdir(parents=True)
        (target / (".lock" if in_the_way == "lock-a-directory" else "records.jsonl")).mkdir()
    argv = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, "is a directory, where the records file should be"
                          if in_the_way == "records-a-directory" else "move it")
    if in_the_way == "model-dir-a-file":
        assert target.read_text() == "keep me"


def _slug(spec: str) -> str:
    from cram_harness.results.files import model_dir

    return model_dir(Path("."), spec).name


@pytest.mark.parametrize("line, why", [
    ('{"key": "k1", "length": 8}', "'best_accuracy' is missing"),
    (json.dumps(record("k2", best_accuracy="high")), "'best_accuracy' is 'high'"),
    ("[1, 2, 3]", "it holds list"),
])
def test_a_record_line_of_another_shape_is_skipped_and_the_run_finishes(
        line, why, tiny_model_dir, books, tmp_path, capsys, recwarn):
    out = tmp_path / "results"
    argv = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path", str(out)]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    (records,) = out.rglob("records.jsonl")
    kept = records.read_text().splitlines()
    records.write_text("\n".join([kept[0], line, *kept[1:]]) + "\n")
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    assert any(f"records.jsonl:2: not a record (key {why}" in str(w.message)
               or f"records.jsonl:2: not a record ({why}" in str(w.message) for w in recwarn)
    assert len([r for r in whole_records(records) if "best_accuracy" in r]) >= len(kept)


def _model_dir(tmp_path: Path, config: object, weights: bool = True) -> str:
    path = tmp_path / "model"
    path.mkdir(exist_ok=True)
    make_word_tokenizer().save_pretrained(path)
    text = config if isinstance(config, str) else json.dumps(config)
    (path / "config.json").write_text(text)
    if weights:
        (path / "model.safetensors").write_bytes(b"")
    return str(path)


@pytest.mark.parametrize("config, weights, message", [
    ({"model_type": "bert", "hidden_size": 64}, True, "a bert model is no decoder"),
    ({"model_type": "t5", "is_encoder_decoder": True}, True, "a t5 model is no decoder"),
    ({"model_type": "fancy-lm"}, True, "model_type 'fancy-lm' is not one this transformers"),
    ([{"model_type": "llama"}], True, "holds list, not a JSON object"),
    ("{not json", True, "is not valid JSON"),
    ({"model_type": "llama"}, False, "has a config.json but no weights"),
    ({"model_type": "llama", "auto_map": {"AutoModelForCausalLM": "m.M"}}, True,
     "pass --trust-remote-code if you trust it"),
])
def test_a_model_directory_we_cannot_load_is_one_line(config, weights, message, tmp_path,
                                                      capsys):
    model = _model_dir(tmp_path, config, weights)
    code, _, err = run_cli(["decode", "nowhere", "--model", model], capsys)
    assert_one_error_line(code, err, message)


@pytest.mark.parametrize("key, value, message", [
    ("threshold", '"high"', "key 'threshold' is 'high', expected an accuracy in (0, 1]"),
    ("stop_below", '"0.5"', "key 'stop_below' is '0.5'"),
    ("source", "{kind: random, num_words: many}", "option 'num_words' is 'many', expected int"),
    # numbers of the right type that make no sense (round three)
    ("stop_below", ".nan", "key 'stop_below' is nan"),
    ("threshold", ".inf", "key 'threshold' is inf"),
    ("num_samples", "2.5", "key 'num_samples' must be"),
    ("past_capacity", "1.5", "key 'past_capacity' must be"),
    ("lengths", f"[8, {10**20}]", "key 'lengths' must be"),
])
def test_a_task_file_of_the_wrong_types_fails_before_the_model_loads(key, value, message,
                                                                     tmp_path, capsys,
                                                                     monkeypatch):
    fields = {"task": "mine", "kind": "capacity", "dataset": "mine", "lengths": "[8]",
              "source": "{kind: random}", key: value}
    (tmp_path / "mine.yaml").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    code, _, err = run_cli(["--model", "smollm2-135m", "--tasks", "mine", "--include-path",
                            str(tmp_path)], capsys)
    line = assert_one_error_line(code, err, message)
    assert "mine.yaml" in line


def test_a_second_ctrl_c_exits_quietly_with_the_records_whole(tiny_model_dir, books, tmp_path):
    args = ["--model", tiny_model_dir, *RUN, "--data-files", books, "--output-path",
            str(tmp_path / "results")]
    records = tmp_path / "results" / _slug(tiny_model_dir) / "records.jsonl"
    proc = Proc(args, tmp_path / "p")
    proc.wait_until(lambda: line_count(records) >= 1, "the first record")
    proc.signal(signal.SIGINT)
    time.sleep(0.01)
    proc.signal(signal.SIGINT)
    assert proc.wait() == 130
    assert "Traceback" not in proc.stderr(), proc.stderr()
    whole_records(records)


# --- any edit of a file we read back: it loads, or it is one line --------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from cram_harness.errors import CramError  # noqa: E402

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 10**7) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8)
MUTATIONS = settings(max_examples=60, deadline=None, database=None)


@st.composite
def mutated(draw, original: dict):
    """The object with a few keys replaced by any JSON, deleted or added; or any JSON."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)
    data = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(data) or ["x"]))
        action = draw(st.sampled_from(["replace", "delete", "add", "nest"]))
        if action == "replace" or (action == "nest" and not isinstance(data.get(key), dict)):
            data[key] = draw(JSON)
        elif action == "delete":
            data.pop(key, None)
        elif action == "add":
            data[draw(st.text(max_size=6))] = draw(JSON)
        else:
            inner = data[key]
            if inner:
                inner[draw(st.sampled_from(sorted(inner)))] = draw(JSON)
    return data


def _loads_or_one_line(read) -> None:
    try:
        read()
    except CramError as exc:
        assert "\n" not in str(exc) and str(exc)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import cram_harness
    from tests.conftest import make_tiny_model

    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3, max_steps=30)
    path = result.save_adapter(tmp_path_factory.mktemp("adapter") / "adapter")
    return model, tok, path, json.loads((path / "cram.json").read_text())


def test_any_edit_of_cram_json_decodes_or_is_one_line(exported):
    from cram_harness.api import decode_adapter

    model, tok, path, original = exported

    @MUTATIONS
    @given(mutated(original))
    def check(info):
        (path / "cram.json").write_text(json.dumps(info))
        _loads_or_one_line(lambda: decode_adapter(path, model, tok))

    check()


def test_any_edit_of_a_results_file_reads_and_tabulates_or_is_one_line(tmp_path):
    from cram_harness.reporting.tables import load_results, render, rich_table, table1_rows

    original = json.loads(write_results(tmp_path / "orig.json").read_text())
    path = tmp_path / "r" / "results_2026-01-01T00-00-00.json"
    path.parent.mkdir()

    @MUTATIONS
    @given(mutated(original))
    def check(data):
        path.write_text(json.dumps(data))

        def read_and_show():
            rows = table1_rows(load_results([path]))
            render(rows, "csv"), render(rows, "markdown"), rich_table(rows)

        _loads_or_one_line(read_and_show)

    check()


def test_any_edit_of_a_task_file_parses_or_is_one_line(tmp_path):
    import yaml

    from cram_harness.harness.registry import check_source
    from cram_harness.harness.tasks import TaskConfig, parse_file

    original = {"task": "mine", "kind": "capacity", "dataset": "mine", "lengths": [8, 16],
                "source": {"kind": "random", "num_words": 50}, "num_samples": 4,
                "threshold": 0.99, "past_capacity": 3, "sampling": "grid"}
    path = tmp_path / "mine.yaml"

    @MUTATIONS
    @given(mutated(original))
    def check(data):
        path.write_text(yaml.safe_dump(data))

        def parse():
            task = parse_file(path)
            if isinstance(task, TaskConfig):
                check_source(task.source)

        _loads_or_one_line(parse)

    check()


def test_any_edit_of_a_record_line_is_read_or_skipped(tmp_path):
    import warnings

    from cram_harness.results.records import read_records

    path = tmp_path / "records.jsonl"

    @MUTATIONS
    @given(mutated(record("k1")))
    def check(rec):
        path.write_text(json.dumps(rec) + "\n" + json.dumps(record("k2")) + "\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            kept = [r["key"] for r in read_records(path)]  # never raises
        assert kept[-1] == "k2" and len(kept) in (1, 2)

    check()
