"""The installed package carries its task files and novels, and `cram-eval --help` stays
light."""

import subprocess
import sys
import zipfile
from pathlib import Path

from cram_harness.harness.registry import all_tasks

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_the_task_yaml(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("cram_harness-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.rsplit("/", 1)[1][:-5] for n in names if n.startswith("cram_harness/tasks/")}
    assert shipped == set(all_tasks())
    assert any(n.endswith("entry_points.txt") for n in names)
    novels = {n for n in names if n.startswith("cram_harness/corpus/gutenberg/")}
    assert len([n for n in novels if n.endswith(".txt")]) == 3  # offline natural text
    assert "cram_harness/corpus/gutenberg/PROVENANCE.md" in novels


def test_cli_help_does_not_import_torch():
    code = ("import sys; from cram_harness.cli import cli; "
            "from cram_harness.harness import registry; registry.all_tasks(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
