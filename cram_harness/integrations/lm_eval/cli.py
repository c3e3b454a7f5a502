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
        # lm-eval hands the model --device beside model_args, so a device= there would reach
        # it twice; and lm-eval's default, cuda:0, would be what its results claim on a CPU
        args, device = _device_out_of_model_args(args)
        if device is None:
            import torch

            device = "cuda:0" if torch.cuda.is_available() else "cpu"
        args = [*args, "--device", device]
    sys.argv[1:] = args
    try:
        cli_evaluate()
    except CramError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def _device_out_of_model_args(args: list[str]) -> tuple[list[str], str | None]:
    """args with `device=X` taken out of --model_args (either spelling, `=` or a second
    argument), and X."""
    args = list(args)
    for i, arg in enumerate(args):
        flag, eq, value = arg.partition("=")
        if flag not in ("--model_args", "--model-args"):
            continue
        at = i if eq else i + 1
        if at >= len(args):
            break
        text = value if eq else args[at]
        parts = text.split(",")
        device = next((p.split("=", 1)[1] for p in parts if p.startswith("device=")), None)
        if device is None:
            break
        rest = ",".join(p for p in parts if not p.startswith("device="))
        args[at] = f"{flag}={rest}" if eq else rest
        return args, device
    return args, None


if __name__ == "__main__":
    main()
