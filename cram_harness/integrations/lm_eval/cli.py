"""`cram-lm-eval ARGS`: lm-eval's own CLI, unchanged, with our model type registered and our
task directory included. (Kept apart from lm_eval_bridge: lm-eval imports that module again
through the task YAML, and it must be imported once under one name.)"""

from __future__ import annotations

import sys


def main() -> None:
    from cram_harness.errors import CramError

    try:
        from cram_harness.integrations.lm_eval import bridge as lm_eval_bridge
    except CramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from lm_eval.__main__ import cli_evaluate

    args = sys.argv[1:]  # lm-eval's CLI reads sys.argv itself
    runs = bool(args) and args[0] not in ("-h", "--help") and (
        args[0].startswith("-") or args[0] in ("run", "ls", "validate"))
    given = {a.split("=")[0] for a in args}
    if runs and "--include_path" not in given:
        args = [*args, "--include_path", str(lm_eval_bridge.task_dir())]
    if runs and "--device" not in given:
        import torch

        # lm-eval's default is cuda:0, which its results would then claim on a CPU run
        args = [*args, "--device", "cuda:0" if torch.cuda.is_available() else "cpu"]
    sys.argv[1:] = args
    try:
        cli_evaluate()
    except CramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
