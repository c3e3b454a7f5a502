"""The `cram-eval` command: its group, its commands (one module each: run, listing, reports,
adapters) and `main`, which turns every error into one line. Commands parse options and show
results; the work is done below them. Heavy imports (torch, transformers) happen only inside
commands."""

from __future__ import annotations

import os
import signal
import sys
import traceback
import warnings

import click

from cram_harness.cli.adapters import decode, export
from cram_harness.cli.listing import ls
from cram_harness.cli.reports import leaderboard, report, show
from cram_harness.cli.run import SIGNALS, run
from cram_harness.errors import CramError, os_error_line


class DefaultRunGroup(click.Group):
    """`cram-eval --model ...` means `cram-eval run --model ...` (lm-eval's habit), and a run
    takes lm-eval's spellings of its options (integrations/lm_eval/spellings.py)."""

    def parse_args(self, ctx, args):
        from cram_harness.integrations.lm_eval.spellings import normalize

        if args and args[0].startswith("-") and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        if args and args[0] == "run":
            args = ["run", *normalize(args[1:])]
        return super().parse_args(ctx, args)


@click.group(cls=DefaultRunGroup)
@click.version_option(package_name="cram-harness")
def cli() -> None:
    """Measure how many tokens fit into an LLM's input vectors.

    \b
    cram-eval --model smollm2-135m --tasks capacity_random --limit 4
    cram-eval leaderboard results/
    cram-eval ls tasks

    Add --debug to any command to see the full traceback of an error.
    """


for command in (run, ls, leaderboard, report, export, decode, show):
    cli.add_command(command)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not debug:
        warnings.formatwarning = _one_line_warning  # not Python's file:line and source

    def on_signal(signum, frame):
        if SIGNALS:  # a second Ctrl-C while the first unwinds: leave now, quietly; every
            os._exit(130)  # record is a whole line already, a half line is skipped on resume
        SIGNALS.append(signum)  # kept: a library may swallow the KeyboardInterrupt below
        raise KeyboardInterrupt

    SIGNALS.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run_cli(argv, debug)
    finally:
        if not SIGNALS:  # after an interruption ours stays: threads may still be joined
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _run_cli(argv: list[str], debug: bool) -> None:
    try:
        cli.main(args=argv, prog_name="cram-eval", standalone_mode=False)
    except click.exceptions.Abort:
        _interrupted()
    except click.ClickException as exc:  # one line, as every error: click's own words
        ctx = getattr(exc, "ctx", None)
        where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        click.echo(f"error: {exc.format_message()}{where}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except CramError as exc:
        if debug:
            traceback.print_exc()
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except OSError as exc:  # the one boundary for the operating system's errors
        if debug:
            raise
        click.echo(f"error: {os_error_line(exc)}", err=True)
        sys.exit(2)
    except Exception as exc:  # an unexpected fault: one line unless --debug
        if debug:
            raise
        click.echo(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the "
                   "traceback)", err=True)
        sys.exit(1)


def _interrupted() -> None:
    click.echo("interrupted: every finished sample is saved; rerun the same command to "
               "resume", err=True)
    sys.exit(130)


if __name__ == "__main__":
    main()
