"""Input a user types or points at before any model loads (flags, data files, texts on
stdin, task folders, task YAML, an output folder) is refused in one line that says what was
wrong and what to do, exit code 2: never a raw exception from deep inside, never a model
loaded for nothing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cram_harness.errors import CramError
from tests.helpers import (
    GOOD_TASK,
    assert_one_error_line,
    env,
    flat,
    run_args,
    run_cli,
)
from tests.tiny import make_word_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")  # in-process runs: one torch thread


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
    from cram_harness.models.tokens import encode_text

    items = texts if isinstance(texts, list) else [texts]
    if message is None:
        assert [encode_text(make_word_tokenizer(), t) for t in items]
    else:
        with pytest.raises(CramError, match=message):
            [encode_text(make_word_tokenizer(), t) for t in items]


def data_file(name: str, content: bytes):
    def build(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(content)
        return ["--data-files", str(tmp / name)]

    return build


def task_yaml(text: str, task: str = "mine"):
    def build(tmp: Path) -> list[str]:
        (tmp / "tasks").mkdir()
        (tmp / "tasks" / "mine.yaml").write_text(text)
        return ["--include-path", str(tmp / "tasks"), "--tasks", task]

    return build


def flags(*args: str):
    return lambda tmp: list(args)


GUTENBERG_ONLY = (b"The Project Gutenberg eBook of Nothing\n*** START OF THE PROJECT GUTENBERG "
                  b"EBOOK NOTHING ***\n\n*** END OF THE PROJECT GUTENBERG EBOOK NOTHING ***\n"
                  b"Project Gutenberg License.\n")


# (id, how to build the arguments, the words the one error line must hold). These fail before
# a model is loaded; the run arguments default to a good task on good data.
BEFORE_THE_MODEL = [
    ("empty-txt", data_file("empty.txt", b""), "is empty or only whitespace"),
    ("whitespace-txt", data_file("blank.txt", b" \n\t\r\n  "), "is empty or only whitespace"),
    ("binary-txt", data_file("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
     "is a binary file"),
    ("latin1-txt", data_file("latin1.txt", "Caf\u00e9 au lait.".encode("latin-1")),
     "is not UTF-8"),
    ("utf16-txt", data_file("utf16.txt", "A book.".encode("utf-16")), "binary file"),
    ("jsonl-without-text", data_file("rows.jsonl", b'{"story": "A b."}\n'),
     "has no column 'text'; its columns are: story"),
    ("csv-without-text", data_file("rows.csv", b"story,n\nA b.,1\n"),
     "has no column 'text'; its columns are: story, n"),
    ("jsonl-row-not-object", data_file("rows.jsonl", b"[1, 2]\n"), "is not a JSON object"),
    ("jsonl-text-not-string", data_file("rows.jsonl", b'{"text": 5}\n'), "'text' is not text"),
    ("jsonl-broken", data_file("rows.jsonl", b'{"text": \n{"text": "A."}\n'), "not valid JSON"),
    ("parquet-broken", data_file("rows.parquet", b"PAR1 not really"), "not a readable parquet"),
    ("unsupported-extension", data_file("notes.md", b"Some notes."), "unsupported extension"),
    ("gutenberg-boilerplate-only", data_file("boilerplate.txt", GUTENBERG_ONLY),
     "only Project Gutenberg boilerplate"),
    ("missing-data-path", flags("--data-files", "/no/such/books/*.txt"), "matches no"),
    ("lengths-zero", flags("--lengths", "0,8"), "--lengths is (0, 8): expected positive integers"),
    ("lengths-negative", flags("--lengths=-4,8"), "--lengths is (-4, 8): expected positive"),
    ("lengths-empty", flags("--lengths", ","), "--lengths is (): expected positive integers"),
    ("lengths-not-integer", flags("--lengths", "8.5"), "comma-separated integers"),
    ("mem-tokens-zero", flags("--mem-tokens", "0"), "--mem-tokens is (0,): expected positive"),
    ("mem-tokens-negative", flags("--mem-tokens=-1"), "--mem-tokens is (-1,): expected positive"),
    ("limit-zero", flags("--limit", "0"), "--limit takes a whole number of texts or a fraction"),
    ("batch-size-zero", flags("--batch-size", "0"), "--batch-size takes a positive integer"),
    ("batch-size-word", flags("--batch-size", "many"), "--batch-size takes a positive integer"),
    ("temperature-zero", flags("--temperature", "0"), "--temperature is 0.0: expected a finite"),
    ("lr-negative", flags("--lr=-0.1"), "--lr is -0.1: expected a finite number > 0"),
    ("subspace-negative", flags("--subspace=-2"), "--subspace is -2: expected a whole number"),
    ("unknown-task", flags("--tasks", "capacity_pg20"), "did you mean capacity_pg19"),
    ("unknown-data-source", task_yaml(GOOD_TASK.replace("random", "randm")),
     "unknown data source 'randm': did you mean random"),
    ("data-source-bad-option", task_yaml(GOOD_TASK.replace("{kind: random}",
                                                           "{kind: random, words: 3}")),
     "data source 'random' has no option 'words'"),
    ("yaml-syntax", task_yaml("task: mine\nkind: capacity\n  dataset: [d\n"), "not valid YAML"),
    ("yaml-lengths-string", task_yaml(GOOD_TASK.replace("[8]", "eight")),
     "'lengths' must be a non-empty list of positive integers"),
    ("yaml-lengths-negative", task_yaml(GOOD_TASK.replace("[8]", "[8, -16]")),
     "'lengths' must be a non-empty list of positive integers"),
    ("yaml-unknown-kind", task_yaml(GOOD_TASK.replace("capacity", "capacty")),
     "key 'kind' is 'capacty'"),
    ("yaml-unknown-key", task_yaml(GOOD_TASK + "lenghts: [8]\n"), "unknown key 'lenghts'"),
    ("yaml-not-a-mapping", task_yaml("- capacity\n- pg19\n"), "must hold a mapping"),
    ("yaml-group-includes-itself", task_yaml("group: mine\ntasks: [mine]\n"),
     "group 'mine' includes itself"),
    ("yaml-duplicate-task-name", task_yaml(GOOD_TASK.replace("mine", "capacity_pg19")),
     "task name 'capacity_pg19' is already defined"),
    ("output-path-under-a-file", lambda tmp: ["--output-path", str(_file(tmp) / "results")],
     "cannot write to the output path"),
    ("output-path-is-a-file", lambda tmp: ["--output-path", str(_file(tmp))],
     "cannot write to the output path"),
]


def _file(tmp: Path) -> Path:
    (tmp / "a-file").write_text("not a directory")
    return tmp / "a-file"


@pytest.mark.parametrize("build, message", [c[1:] for c in BEFORE_THE_MODEL],
                         ids=[c[0] for c in BEFORE_THE_MODEL])


def test_bad_input_before_the_model_is_one_line(build, message, tmp_path, capsys,
                                                monkeypatch):
    def never_load(*args, **kwargs):
        raise AssertionError("a model was loaded for a run that cannot succeed")

    monkeypatch.setattr("cram_harness.models.load.load_model", never_load)
    argv = run_args(tmp_path, "no-model-is-loaded", build(tmp_path))
    code, out, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, message)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.json*"))


# A few of the same as real processes: what a user sees, interpreter start included.
@pytest.mark.parametrize("case", ["binary-txt", "lengths-zero", "yaml-syntax",
                                  "output-path-under-a-file"])


def test_bad_input_as_a_process_is_one_line(case, tmp_path):
    (build, message) = {c[0]: c[1:] for c in BEFORE_THE_MODEL}[case]
    argv = run_args(tmp_path, "no-model-is-loaded", build(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "cram_harness", *argv], capture_output=True,
                          text=True, env=env(), timeout=60)
    assert proc.returncode == 2 and not proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


@pytest.mark.parametrize("kind, command", [
    ("task", ["--model", "x", "--tasks", "capacity_pg20"]),
    ("data source", None),
])


def test_the_command_an_error_suggests_exists(kind, command, tmp_path, capsys):
    if command is None:
        (tmp_path / "t").mkdir()
        (tmp_path / "t" / "mine.yaml").write_text(GOOD_TASK.replace("random", "nosuch"))
        command = ["--model", "x", "--tasks", "mine", "--include-path", str(tmp_path / "t")]
    code, out, err = run_cli(command, capsys)
    line = assert_one_error_line(code, err, f"unknown {kind}")
    suggested = line.split("`")[1].split()
    assert suggested[:2] == ["cram-eval", "ls"]
    code, out, err = run_cli(suggested[1:], capsys)
    assert code == 0 and out, err


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_output_directory_is_one_line(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code, out, err = run_cli(run_args(tmp_path, "x", ["--output-path", str(locked)]), capsys)
    finally:
        locked.chmod(0o700)
    assert_one_error_line(code, err, "cannot write to the output path")
