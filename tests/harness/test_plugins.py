"""Plugins as packages add them: entry points of an installed distribution (a .dist-info
folder on the path, as pip leaves it). A broken plugin is listed as broken, fails only the
runs that use it, in one line naming it, and leaves every other run alone."""

import os

import pytest

from tests.helpers import cram_eval
from tests.tiny import write_corpus

ENTRY_POINTS = """\
[cram_harness.data]
broken_source = cram_missing_module:factory

[cram_harness.models]
broken-alias = cram_missing_module:alias

[cram_harness.tasks]
broken_tasks = cram_missing_module:task_dir
"""


@pytest.fixture
def broken_plugin(tmp_path, monkeypatch):
    dist = tmp_path / "site" / "cram_broken-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cram-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    path = os.pathsep.join(filter(None, [str(dist.parent), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    return "cram-broken"


@pytest.mark.parametrize("what, name", [("data", "broken_source"), ("models", "broken-alias"),
                                        ("tasks", "broken_tasks")])
def test_ls_lists_a_broken_plugin_as_broken(broken_plugin, what, name):
    proc = cram_eval("ls", what)
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if "broken:" in line]
    assert line.startswith(name) and "package cram-broken" in line
    assert "No module named 'cram_missing_module'" in line
    assert len(proc.stdout.splitlines()) > 1  # the others are listed as before


def test_a_run_that_does_not_use_it_is_not_affected(broken_plugin, tiny_model_dir, tmp_path):
    proc = cram_eval("--model", tiny_model_dir, "--tasks", "capacity_pg19", "--limit", "1",
                     "--lengths", "4", "--max-steps", "3", "--data-files",
                     write_corpus(tmp_path / "corpus"), "--output-path", str(tmp_path / "out"),
                     "--past-capacity", "0")
    assert proc.returncode == 0, proc.stderr


def test_a_run_that_uses_it_fails_in_one_line_naming_it(broken_plugin, tmp_path):
    (tmp_path / "task.yaml").write_text(
        "task: uses_broken\nkind: capacity\ndataset: broken\nlengths: [4]\n"
        "source: {kind: broken_source}\n")
    for args in (["--model", "broken-alias", "--tasks", "capacity_random"],
                 ["--model", "smollm2-135m", "--tasks", "uses_broken", "--include-path",
                  str(tmp_path)],
                 ["--model", "smollm2-135m", "--tasks", "a_task_of_the_broken_plugin"]):
        proc = cram_eval(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        (error,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
        assert "Traceback" not in proc.stderr, proc.stderr
        assert "plugin" in error and "does not load" in error and "cram-broken" in error
