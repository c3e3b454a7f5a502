"""The rooms of the house, held by their imports (DESIGN.md): the engine knows nothing of
files, tasks or the CLI; results and reports need no torch; `cram-eval --help` and `ls`
answer without loading it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cram_harness"


def imported(folder: str, typing_too: bool = True) -> set[str]:
    """The cram_harness modules a folder's files import, at load time or inside functions
    (and, with `typing_too`, for type annotations only)."""
    found = set()
    for path in (PACKAGE / folder).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and getattr(block.test, "id", None) == "TYPE_CHECKING"
                       for n in ast.walk(block)}
        for node in ast.walk(tree):
            if not typing_too and id(node) in typing_only:
                continue
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            found.update(n for n in names if n.startswith("cram_harness."))
    return found


def test_the_engine_imports_no_file_task_or_cli_code():
    outside = {name for name in imported("engine") if not name.startswith("cram_harness.engine")}
    assert outside <= {"cram_harness.metrics"}, outside


def test_models_and_data_do_not_reach_into_the_harness():
    for folder in ("models", "data"):
        upward = {n for n in imported(folder) if n.split(".")[1] in
                  ("harness", "results", "reporting", "integrations", "cli", "api")}
        assert not upward, (folder, upward)


def test_results_are_made_without_the_harness():
    """Results are made of records and settings, never by reloading the task registry."""
    upward = {n for n in imported("results", typing_too=False) if n.split(".")[1] in
              ("harness", "cli", "api", "engine", "models", "integrations", "reporting")}
    assert not upward, upward


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter where importing torch fails."""
    guard = "import sys; sys.modules['torch'] = None\n"
    return subprocess.run([sys.executable, "-c", guard + code], capture_output=True, text=True,
                          timeout=120)


def test_results_and_reporting_import_no_torch():
    proc = run_without_torch(
        "import importlib, pkgutil, cram_harness.results as r, cram_harness.reporting as p\n"
        "for pkg in (r, p):\n"
        "    for m in pkgutil.iter_modules(pkg.__path__):\n"
        "        importlib.import_module(f'{pkg.__name__}.{m.name}')\n")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("args", [["--help"], ["ls", "tasks"], ["ls", "models"], ["ls", "data"],
                                  ["leaderboard", "--help"]])
def test_help_and_ls_answer_without_torch(args):
    proc = run_without_torch(f"import sys; sys.argv = ['cram-eval', *{args!r}]\n"
                             "from cram_harness.cli import main; main()")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()
