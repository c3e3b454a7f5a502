"""Adapter folders: an edited or damaged cram.json decodes or is one line, and export never
writes over what is not its own adapter (another adapter, a LoRA folder, any file)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from tests.helpers import (
    MUTATIONS,
    assert_one_error_line,
    loads_or_one_line,
    mutated,
    run_cli,
    snapshot,
)
from tests.tiny import make_word_tokenizer


@pytest.fixture
def adapter(tiny_model_dir, tmp_path, capsys):
    """An adapter exported from the tiny model; its cram.json is edited by each case."""
    (tmp_path / "text.txt").write_text("she was at the")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(tmp_path / "adapter"),
                            "--lr", "0.3", "--max-steps", "300"], capsys)
    assert code == 0, err
    return tmp_path / "adapter"


CRAM_JSON_EDITS = [
    ("fingerprint-a-string", lambda i: {**i, "base_model": "llama"}, "'base_model' is 'llama'"),
    ("num-tokens-a-word", lambda i: {**i, "num_tokens": "eight"}, "'num_tokens' is 'eight'"),
    ("no-seed", lambda i: {**i, "seed_token_ids": []}, "'seed_token_ids' is []"),
    ("seed-outside-the-vocabulary", lambda i: {**i, "seed_token_ids": [10**6]},
     "outside this model's vocabulary of 128"),
    ("nothing-to-decode", lambda i: {**i, "num_tokens": 1}, "'num_tokens' is 1"),
    ("a-list", lambda i: [i], "does not hold a JSON object"),
]


@pytest.mark.parametrize("edit, message", [c[1:] for c in CRAM_JSON_EDITS],
                         ids=[c[0] for c in CRAM_JSON_EDITS])


def test_an_edited_cram_json_is_one_line(edit, message, adapter, tiny_model_dir, capsys):
    info = json.loads((adapter / "cram.json").read_text())
    (adapter / "cram.json").write_text(json.dumps(edit(info)))
    code, _, err = run_cli(["decode", str(adapter), "--model", tiny_model_dir], capsys)
    line = assert_one_error_line(code, err, message)
    assert "cram.json" in line


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    import cram_harness
    from tests.tiny import make_tiny_model

    model, tok = make_tiny_model("gpt2"), make_word_tokenizer()
    (result,) = cram_harness.cram(model, "she was at the", tokenizer=tok, lr=0.3, max_steps=30)
    path = result.save_adapter(tmp_path_factory.mktemp("adapter") / "adapter")
    return model, tok, path, json.loads((path / "cram.json").read_text())


def test_any_edit_of_cram_json_decodes_or_is_one_line(exported):
    from cram_harness.api import decode_adapter

    model, tok, path, original = exported

    @MUTATIONS
    @given(mutated(original))
    def check(info):
        (path / "cram.json").write_text(json.dumps(info))
        loads_or_one_line(lambda: decode_adapter(path, model, tok))

    check()


@pytest.mark.parametrize("out", [".", "{tmp}/file", "{tmp}/notes"])
def test_export_never_writes_over_what_is_not_an_adapter(out, tiny_model_dir, tmp_path, capsys,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.txt").write_text("she was at the")
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me too")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text", "text.txt", "--out",
                            out.format(tmp=tmp_path), "--max-steps", "2"], capsys)
    assert_one_error_line(code, err, "give a new directory for the adapter")
    assert (tmp_path / "file").read_text() == "keep me"
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me too"
    assert (tmp_path / "text.txt").is_file()


def test_export_never_deletes_another_adapter(lora_folder, tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    before = snapshot(lora_folder)
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(lora_folder),
                            "--max-steps", "2"], capsys)
    assert_one_error_line(code, err, str(lora_folder))
    assert snapshot(lora_folder) == before


def test_export_replaces_its_own_adapter_and_no_other(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    argv = ["export", "--model", tiny_model_dir, "--text", str(tmp_path / "text.txt"), "--out",
            str(tmp_path / "adapter"), "--max-steps", "2"]
    for _ in range(2):  # a cram adapter it made itself is replaced whole
        code, _, err = run_cli(argv, capsys)
        assert code == 0, err
    (tmp_path / "adapter" / "my-notes.txt").write_text("keep me")  # now it holds more
    before = snapshot(tmp_path / "adapter")
    code, _, err = run_cli(argv, capsys)
    assert "my-notes.txt" in assert_one_error_line(code, err, str(tmp_path / "adapter"))
    assert snapshot(tmp_path / "adapter") == before


@pytest.mark.parametrize("edit, message", [
    ("num_tokens", "holds 1 vector(s) and a text of 1000 tokens"),
    ("vectors", "holds 300 vector(s) and a text of 4 tokens"),
])


def test_decode_names_the_context_when_an_adapter_does_not_fit(edit, message, tiny_model_dir,
                                                               tmp_path, capsys):
    (tmp_path / "text.txt").write_text("she was at the")
    code, _, err = run_cli(["export", "--model", tiny_model_dir, "--text",
                            str(tmp_path / "text.txt"), "--out", str(tmp_path / "a"),
                            "--max-steps", "2"], capsys)
    assert code == 0, err
    if edit == "num_tokens":
        info = json.loads((tmp_path / "a" / "cram.json").read_text())
        (tmp_path / "a" / "cram.json").write_text(json.dumps({**info, "num_tokens": 1000}))
    else:
        import torch
        from safetensors.torch import save_file

        save_file({"prompt_embeddings": torch.zeros(300, 64)},
                  str(tmp_path / "a" / "adapter_model.safetensors"))
    code, _, err = run_cli(["decode", str(tmp_path / "a"), "--model", tiny_model_dir], capsys)
    assert "context of 256" in assert_one_error_line(code, err, message)
