"""Task YAML: a file of the wrong types fails in one line before any model loads, and any edit
of a task file parses or is one line."""

from __future__ import annotations

import pytest
from hypothesis import given

from tests.helpers import (
    MUTATIONS,
    assert_one_error_line,
    loads_or_one_line,
    mutated,
    run_cli,
)


@pytest.mark.parametrize("key, value, message", [
    ("threshold", '"high"', "key 'threshold' is 'high', expected an accuracy in (0, 1]"),
    ("stop_below", '"0.5"', "key 'stop_below' is '0.5'"),
    ("source", "{kind: random, num_words: many}", "option 'num_words' is 'many', expected int"),
    # numbers of the right type that make no sense
    ("stop_below", ".nan", "key 'stop_below' is nan"),
    ("threshold", ".inf", "key 'threshold' is inf"),
    ("num_samples", "2.5", "key 'num_samples' must be"),
    ("past_capacity", "1.5", "key 'past_capacity' must be"),
    ("lengths", f"[8, {10**20}]", "key 'lengths' must be"),
])


def test_a_task_file_of_the_wrong_types_fails_before_the_model_loads(key, value, message,
                                                                     tmp_path, capsys,
                                                                     monkeypatch):
    fields = {"task": "mine", "kind": "capacity", "dataset": "mine", "lengths": "[8]",
              "source": "{kind: random}", key: value}
    (tmp_path / "mine.yaml").write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    import cram_harness.models.load as models

    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    code, _, err = run_cli(["--model", "smollm2-135m", "--tasks", "mine", "--include-path",
                            str(tmp_path)], capsys)
    line = assert_one_error_line(code, err, message)
    assert "mine.yaml" in line


def test_any_edit_of_a_task_file_parses_or_is_one_line(tmp_path):
    import yaml

    from cram_harness.harness.registry import check_source
    from cram_harness.harness.tasks import TaskConfig, parse_file

    original = {"task": "mine", "kind": "capacity", "dataset": "mine", "lengths": [8, 16],
                "source": {"kind": "random", "num_words": 50}, "num_samples": 4,
                "threshold": 0.99, "past_capacity": 3, "sampling": "grid"}
    path = tmp_path / "mine.yaml"

    @MUTATIONS
    @given(mutated(original))
    def check(data):
        path.write_text(yaml.safe_dump(data))

        def parse():
            task = parse_file(path)
            if isinstance(task, TaskConfig):
                check_source(task.source)

        loads_or_one_line(parse)

    check()
