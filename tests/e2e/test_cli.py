"""The CLI as a user runs it: a separate process, exit codes, one-line errors."""

import json

import pytest

from tests.helpers import cram_eval


@pytest.fixture(scope="module")
def results_dir(tiny_model_dir, tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    from tests.tiny import word_sentences

    (corpus / "book.txt").write_text(word_sentences(12))
    out = tmp_path_factory.mktemp("results")
    proc = cram_eval("--model", tiny_model_dir, "--tasks", "cram_pg19", "--limit", "2",
                     "--lengths", "4,8", "--mem-tokens", "1", "--max-steps", "10", "--lr", "0.3",
                     "--data-files", str(corpus), "--output-path", str(out),
                     "--past-capacity", "0")
    assert proc.returncode == 0, proc.stderr
    assert "Table 1" in proc.stdout and "results:" in proc.stdout
    return out


def test_run_writes_results_and_samples(results_dir):
    (model_dir,) = results_dir.iterdir()
    names = sorted(p.name.split("_20")[0] for p in model_dir.iterdir()
                   if not p.name.startswith("."))
    assert names == ["records.jsonl", "results", "samples_capacity_pg19",
                     "samples_info_gain_pg19", "samples_mem_scaling_pg19",
                     "samples_token_gain_pg19"]
    (results,) = model_dir.glob("results_*.json")
    data = json.loads(results.read_text())
    assert data["group_subtasks"]["cram_pg19"] == [
        "capacity_pg19", "token_gain_pg19", "info_gain_pg19", "mem_scaling_pg19"]
    assert "decoding_capacity_k1,none" in data["groups"]["cram_pg19"]
    timings = data["timings"]  # how full the engine's batches stayed, what decoding cost
    assert timings["batch_steps"] > 0 and 0 < timings["occupancy"] <= 1
    assert 0 <= timings["padded_share"] < 1 and 0 <= timings["decode_share"] < 1


@pytest.mark.parametrize("fmt, marker", [("table", "leaderboard"), ("markdown", "| model |"),
                                         ("csv", "model,dataset,protocol,precision,lr"),
                                         ("html", "<table>")])
def test_leaderboard_formats(results_dir, tmp_path, fmt, marker):
    proc = cram_eval("leaderboard", str(results_dir), "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout and "pg19" in proc.stdout
    out = tmp_path / f"board.{fmt}"
    proc = cram_eval("leaderboard", str(results_dir), "--format", fmt, "--output", str(out))
    assert proc.returncode == 0 and marker in out.read_text()


def test_show_prints_a_result_again(results_dir):
    (results,) = next(results_dir.iterdir()).glob("results_*.json")
    proc = cram_eval("show", str(results))
    assert proc.returncode == 0 and "mean accuracy by length" in proc.stdout


def test_ls_lists_tasks_models_and_sources():
    tasks = cram_eval("ls", "tasks").stdout
    for name in ("capacity_pg19", "token_gain_fanfics", "info_gain_random", "mem_scaling_pg19",
                 "cram_random"):
        assert name in tasks
    assert max(map(len, tasks.splitlines())) <= 100
    assert "smollm2-135m" in cram_eval("ls", "models").stdout
    assert "random" in cram_eval("ls", "data").stdout


@pytest.mark.parametrize("args, message", [
    (["--model", "x", "--tasks", "capacity_pg91"], "did you mean capacity_pg19"),
    (["--model", "smollm2-13m", "--tasks", "capacity_random", "--limit", "1"],
     "did you mean 'smollm2-135m'"),
    (["--model", "x", "--tasks", "capacity_random", "--lengths", "8,x"], "comma-separated"),
    (["--model", "hf:org/none", "--tasks", "capacity_random", "--limit", "1"],
     "--local-dir DIR"),
    (["leaderboard", "/no/such/dir"], "does not exist"),
])
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = cram_eval(*args)
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_malformed_task_yaml_names_file_and_key(tmp_path):
    (tmp_path / "bad.yaml").write_text("task: mine\nkind: capacity\nsource: {kind: random}\n")
    proc = cram_eval("ls", "tasks", "--include-path", str(tmp_path))
    assert proc.returncode == 2
    assert "bad.yaml: missing key 'dataset'" in proc.stderr


def test_debug_shows_the_traceback():
    proc = cram_eval("--model", "x", "--tasks", "nope", "--debug")
    assert proc.returncode == 2 and "Traceback" in proc.stderr


def test_report_draws_figures_and_a_page(results_dir, tmp_path):
    proc = cram_eval("report", str(results_dir), "-o", str(tmp_path / "report"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "report" / "report.html").read_text()
    assert page.count('<img src="data:image/png;base64,') >= 3


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_export_then_decode_gives_the_text_back(tiny_model_dir, tmp_path):
    (tmp_path / "text.txt").write_text("she was at the")
    out = tmp_path / "adapter"
    proc = cram_eval("export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"),
                     "--out", str(out), "--lr", "0.3", "--max-steps", "300",
                     "--min-margin", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "greedy exact: True" in proc.stdout
    for model in (["--model", tiny_model_dir], []):  # without --model: the one it names
        proc = cram_eval("decode", str(out), *model)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == "she was at the"
        assert "matches the stored text hash: yes" in proc.stderr


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_decode_refuses_another_base_model(tiny_model_dir, tmp_path):
    from tests.tiny import make_tiny_model, make_word_tokenizer

    other = tmp_path / "other-model"
    make_tiny_model("llama").save_pretrained(other)
    make_word_tokenizer().save_pretrained(other)
    (tmp_path / "text.txt").write_text("she was at the")
    assert cram_eval("export", "--model", str(other), "--text", str(tmp_path / "text.txt"),
                     "--out", str(tmp_path / "a"), "--max-steps", "2").returncode == 0
    proc = cram_eval("decode", str(tmp_path / "a"), "--model", tiny_model_dir)
    assert proc.returncode == 2 and "made for another base model" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("content", [b"", b"   \n", b"\x00\x01binary", b"caf\xe9"])
def test_export_refuses_bad_text_files(tiny_model_dir, tmp_path, content):
    (tmp_path / "bad.txt").write_bytes(content)
    proc = cram_eval("export", "--model", tiny_model_dir, "--text", str(tmp_path / "bad.txt"),
                     "--out", str(tmp_path / "a"))
    assert proc.returncode == 2 and proc.stderr.startswith("error:")
    assert not (tmp_path / "a").exists()


def test_run_and_export_offer_every_engine_setting_once():
    from cram_harness.cli import cli
    from cram_harness.harness.settings import EngineSettings

    fields = set(EngineSettings.__dataclass_fields__)
    for command in ("run", "export"):
        names = {p.name for p in cli.commands[command].params}
        assert fields <= names, (command, fields - names)


def test_export_takes_the_engine_levers_a_run_takes(tiny_model_dir, tmp_path):
    (tmp_path / "text.txt").write_text("she was at the")
    proc = cram_eval("export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"),
                     "--out", str(tmp_path / "a"), "--max-steps", "3", "--temperature", "0.5",
                     "--subspace", "8", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    config = json.loads((tmp_path / "a" / "cram.json").read_text())["config"]
    assert (config["temperature"], config["subspace"], config["seed"], config["max_steps"]) == \
        (0.5, 8, 7, 3)
