"""The rooms of the house, held by their imports (docs/architecture.md): each on a floor,
importing only the floors below; the engine knows nothing of files, tasks or the CLI;
results and reports need no torch; `cram-eval --help` and `ls` answer without loading it."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cram_harness"


# The floors of the house, lowest first. A room imports only rooms on lower floors (the
# imports that run: type annotations under TYPE_CHECKING may name a type of any room below
# the CLI); rooms on one floor do not import each other.
FLOORS = (
    # the shared vocabulary: errors, files written whole, what a file or a setting must be,
    # the metrics and their table, the engine's declared options, the plugin registries
    {"errors", "atomic", "metrics", "schemas", "validation", "config", "plugins"},
    {"engine", "data", "results"},  # the method; the texts; the records and results files
    # model specs (over data's text helpers); protocols judge records; the forecast weighs a
    # text's CE against what a vector holds
    {"models", "protocols", "forecast"},
    {"harness", "reporting"},  # running sweeps; showing results: neither knows the other
    {"integrations"},  # PEFT, lm-eval (over the harness's tasks and settings), sinks
    {"api"},
    {"cli"},
    {"__main__"},  # `python -m cram_harness`: the CLI
)
# Within the floor of shared vocabulary, modules import each other in this order only.
BASE_ORDER = ("errors", "metrics", "schemas", "validation", "config", "atomic", "plugins")


def room(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imported(folder: str, typing_too: bool = True) -> set[str]:
    """The cram_harness modules a room's files import, at load time or inside functions
    (and, with `typing_too`, for type annotations only)."""
    found = set()
    where = PACKAGE / folder
    for path in where.rglob("*.py") if where.is_dir() else [PACKAGE / f"{folder}.py"]:
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


def rooms_imported(name: str) -> set[str]:
    """The other rooms whose code a room runs."""
    rooms = {path.name.removesuffix(".py") for path in PACKAGE.iterdir()
             if path.suffix == ".py" or (path / "__init__.py").exists()}
    return {n.split(".")[1] for n in imported(name, typing_too=False)} & rooms - {name}


def test_every_room_is_on_a_floor():
    rooms = {room(p) for p in PACKAGE.rglob("*.py")} - {"__init__"}
    assert rooms == set().union(*FLOORS)


@pytest.mark.parametrize("floor", range(len(FLOORS)))
def test_no_import_runs_up_the_floors(floor):
    below = set().union(*FLOORS[:floor])
    for name in FLOORS[floor]:
        allowed = below | (FLOORS[0] if floor == 0 else set())
        assert rooms_imported(name) <= allowed, (name, rooms_imported(name) - allowed)


def test_the_shared_vocabulary_imports_in_one_direction():
    for i, name in enumerate(BASE_ORDER):
        assert rooms_imported(name) <= set(BASE_ORDER[:i]), name


def test_the_engine_imports_no_file_task_or_cli_code():
    """The engine needs only the metrics and its declared options."""
    assert rooms_imported("engine") <= {"metrics", "config"}


def test_type_annotations_name_no_room_above_their_own_but_results_protocols():
    """A type-only import does not run, but it says what a room knows of: results are made
    of records and a protocol handed in, and name the harness's task config only."""
    for floor, names in enumerate(FLOORS[:-1]):
        above = set().union(*FLOORS[floor + 1:])
        for name in names:
            typed = {n.split(".")[1] for n in imported(name)} - {name}
            assert typed & above <= ({"protocols", "harness"} if name == "results" else set()), \
                name


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
