"""The fixtures the tests share (tiny models, the word tokenizer, corpora, the real SmolLM2),
and the hooks that set up the session: offline, one torch thread per worker, the slow tests
first. What they are made of is in tests/tiny.py."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
import torch

from tests.tiny import make_tiny_model, make_word_tokenizer, word_sentences, write_corpus


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny GPT-2 and the word tokenizer saved as a local model directory (a model spec)."""
    path = tmp_path_factory.mktemp("tiny-gpt2")
    make_tiny_model("gpt2").save_pretrained(path)
    make_word_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def books(tmp_path_factory) -> str:
    """Three short books: one chunk each, about 54 tokens of the word tokenizer per text."""
    corpus = tmp_path_factory.mktemp("books")
    for i in range(3):
        (corpus / f"book{i}.txt").write_text(word_sentences(12, seed=i))
    return str(corpus)


@pytest.fixture
def word_corpus(tmp_path):
    return write_corpus(tmp_path / "corpus")


@pytest.fixture(scope="session")
def word_tokenizer():
    return make_word_tokenizer()


def pytest_configure(config):
    # No hub here: fail fast instead of retrying. The GGUF cache (conversion is slow) is
    # shared across test runs but kept out of $HOME unless the caller chose a place.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("CRAM_HARNESS_CACHE", "/tmp/cram-harness-test-cache")
    if os.environ.get("PYTEST_XDIST_WORKER"):  # one core per worker, and one thread for
        torch.set_num_threads(1)  # every process its tests start: two workers' processes on
        os.environ["OMP_NUM_THREADS"] = "1"  # two threads each oversubscribed the two cores
        os.environ["MKL_NUM_THREADS"] = "1"  # (the main job: 930 s beside them, 870 s without)


def pytest_collection_modifyitems(items):
    # The slow tests first, the longest (`slow(minutes=N)`) before the others, then the files
    # with the most tests, as xdist would order them. Under `--dist loadfile` files go out in
    # this order, so the suite does not end with one worker running a real model while the
    # other waits. tox passes --no-loadscope-reorder: xdist's own order (most tests first)
    # sent the README's main job (one test, ~9 minutes) out ~5 minutes in, to run alone for
    # its last 9 minutes.
    per_file = Counter(item.nodeid.split("::", 1)[0] for item in items)

    def order(item) -> tuple[float, int]:
        slow = item.get_closest_marker("slow")
        minutes = -1.0 if slow is None else slow.kwargs.get("minutes", 0.0)
        return minutes, per_file[item.nodeid.split("::", 1)[0]]

    items.sort(key=order, reverse=True)  # stable: a file's tests keep their order


@pytest.fixture(scope="session")
def smollm2():
    """The real SmolLM2-135M (slow: ~20 s the first time, a few seconds from the cache)."""
    from cram_harness.models.load import load_model

    return load_model("smollm2-135m", device="cpu")


@pytest.fixture
def lora_folder(tmp_path) -> Path:
    """A LoRA training folder, as PEFT's trainer leaves it."""
    lora = tmp_path / "lora"
    (lora / "checkpoint-500").mkdir(parents=True)
    (lora / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (lora / "adapter_model.safetensors").write_bytes(b"lora weights")
    (lora / "notes.md").write_text("lr sweep, run 3\n")
    (lora / "checkpoint-500" / "optimizer.pt").write_bytes(b"state")
    return lora


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """In-process runs: one torch thread, as the processes get (see the module docstring)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
