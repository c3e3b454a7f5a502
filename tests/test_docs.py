"""The user docs: they build (mkdocs, strict), their generated reference matches the code, and
the commands they show really run.

Every fenced `console` block of the docs is preceded by a marker line:

    <!-- doctest: run -->             its `$ ` commands are run, in page order
    <!-- doctest: skip (REASON) -->   not run (network, hours of compute, installs)

`run` also marks `python` blocks (run as scripts), and `<!-- doctest: file PATH -->` before a
block writes the block to PATH for the commands after it. The commands run in a fresh
directory per page (the recipes share one, in the order of the navigation), against a tiny
random model: the only change made to them is that the offline model `smollm2-135m` becomes
the `tiny_model_dir` fixture (and `results/smollm2-135m` the model's results directory). So the
docs show cheap settings that a reader can run as they are.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PLUGIN = ROOT / "plugins" / "example_plugin"
RECIPES = ["table1.md", "leaderboard.md", "report.md", "peft.md", "lm-eval.md", "distributed.md"]
MODEL = "smollm2-135m"

MARK = re.compile(r"^<!-- doctest: (?:(?P<run>run)|skip \((?P<why>.+)\)|file (?P<path>\S+)) -->$")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    action: str | None  # run | skip | file | None (no marker)
    path: str | None = None

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def read_blocks(page: str) -> list[Block]:
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        mark = MARK.match(lines[i - 1]) if i > 0 else None
        action = path = None
        if mark:
            action = "run" if mark["run"] else "file" if mark["path"] else "skip"
            path = mark["path"]
        out.append(Block(page, i + 1, fence["lang"], "\n".join(lines[i + 1 : end]) + "\n",
                         action, path))
        i = end + 1
    return out


def commands(block: Block) -> list[str]:
    """The `$ ` lines of a console block, with `\\` continuations joined."""
    out, current = [], None
    for line in block.body.splitlines():
        if current is not None:
            current += " " + line.strip()
        elif line.startswith("$ "):
            current = line[2:]
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1].rstrip()
        else:
            out.append(current)
            current = None
    return out


def localize(text: str, model_dir: str) -> str:
    """The one change made to documented commands: the offline model becomes a tiny one."""
    text = re.sub(rf"results/{re.escape(MODEL)}\b", "results/*", text)
    return text.replace(MODEL, model_dir)


def all_pages() -> list[str]:
    return sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))


def run_env(**extra: str) -> dict[str, str]:
    bindir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            "COLUMNS": "120", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1", **extra}


# Runs consecutive python blocks in one interpreter, each as a script with its own globals:
# a block still needs its own imports, but torch and friends are imported once.
PY_RUNNER = """import runpy, sys
for path in sys.argv[1:]:
    print(f"--- {path}", flush=True)
    runpy.run_path(path, run_name="__main__")
"""


def run_page(page: str, cwd: Path, model_dir: str, env: dict[str, str]) -> dict[str, str]:
    """Run a page's marked blocks in order; returns each command's stdout + stderr."""
    outputs: dict[str, str] = {}
    scripts: list[tuple[Block, Path]] = []

    def flush_python() -> None:
        if scripts:
            shown = "python blocks at " + ", ".join(b.where for b, _ in scripts)
            argv = [sys.executable, "-c", PY_RUNNER, *(str(p) for _, p in scripts)]
            _check(scripts[0][0], shown, argv, cwd, env)
            scripts.clear()

    for block in read_blocks(page):
        if block.action == "run" and block.lang == "python":
            script = cwd / f"_doc_{Path(page).stem}_{block.line}.py"
            script.write_text(localize(block.body, model_dir), encoding="utf-8")
            scripts.append((block, script))
            continue
        if block.action in ("run", "file"):
            flush_python()
        if block.action == "file":
            target = cwd / block.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.body, encoding="utf-8")
        elif block.action == "run":
            for command in commands(block):
                local = localize(command, model_dir)
                outputs[command] = _check(block, command, ["bash", "-c", local], cwd, env)
    flush_python()
    return outputs


def _check(block: Block, shown: str, argv: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (
        f"{block.where}: exit {proc.returncode} from\n{shown}\n--- stdout\n"
        f"{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
    return proc.stdout + proc.stderr


def _needs_cli() -> None:
    if shutil.which("cram-eval", path=run_env()["PATH"]) is None:
        pytest.skip("the cram-eval script is not installed beside this Python")


# --- the site ---------------------------------------------------------------------------


def test_mkdocs_build_is_strict_clean(tmp_path):
    # The test env has no mkdocs; tox's docs env runs this test (CRAM_DOCS_ENV=1), where a
    # missing mkdocs is a failure, not a skip: the build and these checks run in every CI.
    if importlib.util.find_spec("mkdocs") is None or importlib.util.find_spec("material") is None:
        if os.environ.get("CRAM_DOCS_ENV"):
            pytest.fail("mkdocs and mkdocs-material are missing from the docs env")
        pytest.skip("mkdocs and mkdocs-material are not installed here; `tox -e docs` runs "
                    "this test")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "cram-eval run" in (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "capacity_pg19" in (site / "tasks" / "index.html").read_text(encoding="utf-8")
    extending = (site / "extending" / "index.html").read_text(encoding="utf-8")
    assert "cram_harness.tasks" in extending and "BundledLines" in extending


def _gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_reference_covers_the_code():
    from dataclasses import fields

    from cram_harness.cli import cli
    from cram_harness.config import CramConfig
    from cram_harness.harness.registry import DATA, all_tasks

    gen = _gen_reference()
    reference = gen.cli_reference()
    for name, command in cli.commands.items():
        assert f"## `cram-eval {name}`" in reference
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert f"`{opt}`" in reference, (name, opt)
    tasks = gen.task_list()
    assert all(f"`{name}`" in tasks for name in all_tasks())
    assert all(f"`{name}`" in gen.data_sources() for name in DATA.names())
    assert "`cram_capacity_random`" in gen.lm_eval_tasks()
    from cram_harness.models.families import FAMILIES

    assert all(f"`{f.model_type}`" in gen.model_families() for f in FAMILIES)
    assert all(f"`{f.name}`" in gen.engine_defaults() for f in fields(CramConfig))
    with pytest.raises(ValueError, match="unknown generated part"):
        gen.render("<!-- generated: nothing -->")


def test_every_command_block_says_whether_it_runs():
    unmarked = [b.where for page in all_pages() for b in read_blocks(page)
                if b.lang == "console" and b.action is None]
    assert not unmarked, ("mark these blocks `<!-- doctest: run -->` or "
                          f"`<!-- doctest: skip (why) -->`: {unmarked}")
    for page in all_pages():
        for block in read_blocks(page):
            if block.action == "run":
                assert block.lang in ("console", "python"), block.where
                assert block.lang == "python" or commands(block), block.where


# --- the commands -----------------------------------------------------------------------


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_quickstart_runs(tiny_model_dir, tmp_path):
    _needs_cli()
    out = run_page("quickstart.md", tmp_path, tiny_model_dir, run_env())
    run = next(text for command, text in out.items() if "--tasks cram_offline" in command)
    assert "Table 1" in run and "results:" in run and "2 sweeps" in run
    assert "capacity_random" in out["cram-eval ls tasks"]
    assert (tmp_path / "report" / "report.html").is_file()


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_recipes_run_in_order(tiny_model_dir, tmp_path):
    """The recipes share one directory: the later ones read what the first one wrote."""
    _needs_cli()
    env = run_env()
    for page in RECIPES:
        run_page(f"recipes/{page}", tmp_path, tiny_model_dir, env)
    assert (tmp_path / "leaderboard.md").read_text().startswith("| model |")
    assert (tmp_path / "report" / "report.html").is_file()
    for adapter in ("stormy", "happy", "stormy-32"):
        assert (tmp_path / "adapters" / adapter / "adapter_model.safetensors").is_file()
    assert list((tmp_path / "lm-eval-results").rglob("results_*.json"))


def test_recipes_list_matches_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.findall(r"recipes/([\w-]+\.md)", nav) == RECIPES
    assert sorted(RECIPES) == sorted(p.name for p in (DOCS / "recipes").glob("*.md"))


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_example_plugin_installs_and_runs(tiny_model_dir, tmp_path):
    """plugins/example_plugin, installed with pip into a directory of its own (the
    environment is left as it was), gives its task, source and alias, and the extending page's
    commands run with it."""
    _needs_cli()
    source = tmp_path / "src"
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = tmp_path / "site-packages"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
           str(target)]
    if importlib.util.find_spec("setuptools") is not None:
        pip += ["--no-build-isolation", "--no-index"]  # offline, and fast
    proc = subprocess.run([*pip, str(source)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = run_env(PYTHONPATH=os.pathsep.join(filter(None, [str(target),
                                                           os.environ.get("PYTHONPATH")])),
                  CRAM_EXAMPLE_MODEL=tiny_model_dir)
    work = tmp_path / "work"
    work.mkdir()
    out = run_page("extending.md", work, tiny_model_dir, env)
    assert "capacity_my_texts" in out["cram-eval ls tasks --include-path my_tasks"]
    assert "capacity_first_lines" in out["cram-eval ls tasks"]
    assert "bundled_lines" in out["cram-eval ls data"]
    assert "example-model" in out["cram-eval ls models"]
    (results,) = (work / "results").glob("example-model/results_*.json")
    assert "capacity_first_lines" in results.read_text()
