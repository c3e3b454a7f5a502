"""A state-space model through the CLI as a user runs it, by its Hub spec: the Hub's own
client serves `hf:state-spaces/mamba-130m-hf` from a local Hub cache (as after a download),
here holding a tiny random Mamba with the word tokenizer; the Hub itself is not reachable."""

import json

import pytest

from tests.helpers import cram_eval
from tests.tiny import make_family_model, make_word_tokenizer, write_corpus

REPO = "state-spaces/mamba-130m-hf"
COMMIT = "5f1b2c3d4e5f60718293a4b5c6d7e8f901234567"


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory):
    """A Hub cache with REPO at COMMIT, laid out as `hf download` leaves it."""
    root = tmp_path_factory.mktemp("hub")
    folder = root / f"models--{REPO.replace('/', '--')}"
    snapshot = folder / "snapshots" / COMMIT
    make_family_model("mamba").save_pretrained(snapshot)
    make_word_tokenizer().save_pretrained(snapshot)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(COMMIT)
    return root


@pytest.fixture
def cli(hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))  # the CLI's process inherits it
    return cram_eval


def test_a_mamba_run_gives_results_and_a_leaderboard_row(cli, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    out = tmp_path / "results"
    proc = cli("--model", f"hf:{REPO}", "--tasks", "capacity_pg19,token_gain_pg19",
               "--limit", "2", "--lengths", "4,8", "--max-steps", "40", "--lr", "0.1",
               "--data-files", corpus, "--output-path", str(out), "--past-capacity", "0")
    assert proc.returncode == 0, proc.stderr
    assert "Table 1" in proc.stdout
    (results,) = out.rglob("results_*.json")
    data = json.loads(results.read_text())
    info = data["model_info"]
    assert info["model_type"] == "mamba" and info["context_length"] is None
    assert info["eq1_capacity"] > 0
    assert "token_gain,none" in data["results"]["token_gain_pg19"]

    board = cram_eval("leaderboard", str(out), "--format", "csv")
    assert board.returncode == 0, board.stderr
    rows = [line for line in board.stdout.splitlines() if "mamba-130m-hf" in line]
    assert rows and "pg19" in rows[0]


@pytest.mark.slow  # a whole process run, ~15 s or more: tox runs it, `pytest` alone not
def test_a_mamba_adapter_exports_and_decodes(cli, tmp_path):
    (tmp_path / "text.txt").write_text("she was at the")
    adapter = tmp_path / "adapter"
    proc = cli("export", "--model", f"hf:{REPO}", "--text",
               str(tmp_path / "text.txt"), "--out", str(adapter), "--lr", "0.3",
               "--max-steps", "300", "--min-margin", "0.5")
    assert proc.returncode == 0, proc.stderr
    assert "greedy exact: True" in proc.stdout
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert (config["base_model_name_or_path"], config["revision"]) == (REPO, COMMIT)
    proc = cli("decode", str(adapter), "--model", f"hf:{REPO}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "she was at the"
