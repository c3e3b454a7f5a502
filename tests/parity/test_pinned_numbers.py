"""The CLI on a tiny model against recorded per-sample numbers (torchtune's habit): a change
that moves a step count, an accuracy or a loss of the paper protocol shows here first.

Recorded with torch 2.13.0 (CPU) and transformers 5.23. If a deliberate change moves them,
rerun the command below and record the new numbers with the reason in the commit."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import make_tiny_model, make_word_tokenizer, write_corpus

# (text, L): (steps, best step, best accuracy, min loss, base loss, greedy exact)
PINNED = {
    ("book0.txt#0", 4): (29, 29, 1.0, 0.5154526829719543, 13.469544410705566, True),
    ("book0.txt#0", 8): (60, 30, 0.4285714328289032, 3.2782208919525146, 12.006265640258789,
                         False),
    ("book1.txt#0", 4): (22, 22, 1.0, 0.7969943881034851, 12.830269813537598, True),
    ("book1.txt#0", 8): (60, 47, 0.2857142984867096, 4.890316009521484, 13.313508987426758,
                         False),
}


def test_the_cli_gives_the_recorded_numbers(tmp_path):
    model_dir = tmp_path / "tiny-llama"
    make_tiny_model("llama").save_pretrained(model_dir)
    make_word_tokenizer().save_pretrained(model_dir)
    corpus = write_corpus(tmp_path / "corpus")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "cram_harness", "--model", str(model_dir), "--tasks",
         "capacity_pg19,info_gain_pg19", "--data-files", corpus, "--lengths", "4,8",
         "--limit", "2", "--max-steps", "60", "--lr", "0.1", "--past-capacity", "0",
         "--device", "cpu", "--output-path", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    (records,) = out.rglob("records.jsonl")
    got = {(r["sample_id"], r["length"]): r for r in map(json.loads, records.open())}
    assert set(got) == set(PINNED)
    for key, (steps, best_step, accuracy, min_loss, base_loss, exact) in PINNED.items():
        rec = got[key]
        assert (rec["steps"], rec["best_step"], rec["greedy_exact"]) == (steps, best_step, exact)
        assert rec["best_accuracy"] == pytest.approx(accuracy, abs=1e-6)
        assert rec["min_loss"] == pytest.approx(min_loss, rel=1e-4)
        assert rec["base_loss"] == pytest.approx(base_loss, rel=1e-5)
    (results,) = out.rglob("results_*.json")
    table = json.loads(results.read_text())["results"]
    assert table["capacity_pg19"]["decoding_capacity,none"] == 4
    full = [got[k] for k in PINNED if k[1] == 8]  # the two full vectors, at 8 tokens
    assert table["info_gain_pg19"]["n_full_vectors,none"] == 2
    assert table["info_gain_pg19"]["information_gain,none"] == pytest.approx(
        sum((r["base_loss"] - r["min_loss"]) * 8 for r in full) / 2, rel=1e-6)
    assert table["info_gain_pg19"]["information_gain,none"] == pytest.approx(68.605, rel=1e-4)
