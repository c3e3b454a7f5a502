"""The `cram-eval` command. Parses arguments and shows results; the work is done by
`evaluator.evaluate`. Heavy imports (torch, transformers) happen only inside commands."""

from __future__ import annotations

import signal
import sys
import traceback

import click

from cram_harness.errors import CramError


def _ints(value: str | None, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise CramError(f"{name} takes comma-separated integers, got {value!r}") from None


class DefaultRunGroup(click.Group):
    """`cram-eval --model ...` means `cram-eval run --model ...` (lm-eval's habit)."""

    def parse_args(self, ctx, args):
        if args and args[0].startswith("-") and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
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


@cli.command()
@click.option("--model", "models", required=True,
              help="Model spec(s), comma-separated: hf:REPO[@REV], a directory, gguf:FILE, "
                   "or an alias (cram-eval ls models).")
@click.option("--tasks", required=True, help="Task or group names, comma-separated.")
@click.option("--limit", type=int, help="Texts per length (default: each task's own).")
@click.option("--lengths", help="Token lengths to sweep, e.g. 8,16,32 (default: the task's).")
@click.option("--mem-tokens", help="Numbers of [mem] vectors, e.g. 1,2,4 (default: the task's).")
@click.option("--batch-size", type=int, default=8, show_default=True,
              help="Texts optimized together.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--dtype", default="auto", show_default=True,
              help="auto (bf16 on a GPU that has it, else fp32), fp32, bf16, fp16.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-steps", type=int, help="Optimizer steps per text (paper: 5000).")
@click.option("--lr", type=float, help="Learning rate (paper: 1e-2).")
@click.option("--min-margin", type=float,
              help="Converged only when every target logit beats the runner-up by this much.")
@click.option("--stop-below", type=float,
              help="Stop the sweep once a length's mean accuracy falls below this "
                   "(default: the task's; 0 runs the whole grid).")
@click.option("--data-files", help="Local texts for every task: a directory, a glob, or a "
                                   ".txt/.jsonl/.csv/.parquet file.")
@click.option("--output-path", default="results", show_default=True)
@click.option("--include-path", multiple=True, help="Extra directory of task YAML.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the hub.")
def run(models, tasks, limit, lengths, mem_tokens, batch_size, device, dtype, seed, max_steps,
        lr, min_margin, stop_below, data_files, output_path, include_path,
        trust_remote_code) -> None:
    """Run tasks on one or more models and print the Table-1 summary."""
    from rich.console import Console

    from cram_harness.display import RichDisplay
    from cram_harness.evaluator import RunSettings, evaluate
    from cram_harness.report import rich_table, table1_rows

    settings = RunSettings(
        limit=limit, lengths=_ints(lengths, "--lengths"),
        mem_tokens=_ints(mem_tokens, "--mem-tokens"), batch_size=batch_size, device=device,
        dtype=dtype, seed=seed, max_steps=max_steps, lr=lr, min_margin=min_margin,
        data_files=data_files, stop_below=stop_below, output_path=output_path,
        include_path=tuple(include_path), trust_remote_code=trust_remote_code)
    display = RichDisplay()
    try:
        results = evaluate(models.split(","), tasks.split(","), settings, display)
    finally:
        display.close()
    console = Console()
    for res in results:
        for sweep in res["sweeps"]:
            console.print(f"[dim]{sweep['dataset']} k={sweep['n_mem']}: stopped at "
                          f"{sweep['stopped']['length']}: {sweep['stopped']['reason']}[/]")
        console.print(f"results: {res['results_file']}")
    title = "Table 1" if len(results) == 1 else "Table 1: model comparison"
    console.print(rich_table(table1_rows(results), title=title))


@cli.command("ls")
@click.argument("what", type=click.Choice(["tasks", "models", "data"]))
@click.option("--include-path", multiple=True, help="Extra directory of task YAML.")
def ls(what: str, include_path) -> None:
    """List registered tasks (and groups), model aliases, or data sources."""
    from cram_harness.registry import all_tasks, data_sources, model_aliases
    from cram_harness.task import GroupConfig

    if what == "tasks":
        for name, item in sorted(all_tasks(include_path).items()):
            kind = "group" if isinstance(item, GroupConfig) else item.kind
            click.echo(f"{name:28} {kind:12} {item.description}")
    elif what == "models":
        for name in sorted(model_aliases()):
            click.echo(name)
        click.echo("(and any hf:REPO[@REV], local directory, or gguf:FILE)")
    else:
        for name in sorted(data_sources()):
            click.echo(name)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt_name", type=click.Choice(["table", "markdown", "csv", "html"]),
              default="table", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file.")
def leaderboard(paths, fmt_name, output) -> None:
    """Rank models from results files or directories."""
    from cram_harness.outputs import write_text_atomic
    from cram_harness.report import load_results, render, rich_table, table1_rows

    rows = table1_rows(load_results(paths))
    if fmt_name == "table":
        from rich.console import Console

        if output:
            with open(output, "w", encoding="utf-8") as f:
                Console(file=f, width=160).print(rich_table(rows, "cram-harness leaderboard"))
        else:
            Console().print(rich_table(rows, "cram-harness leaderboard"))
        return
    text = render(rows, fmt_name)
    if output:
        from pathlib import Path

        write_text_atomic(Path(output), text)
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("path")
def show(path: str) -> None:
    """Print one results file again."""
    from rich.console import Console

    from cram_harness.report import load_results, rich_table, table1_rows

    (res,) = load_results([path])[:1]
    console = Console()
    console.print(f"{res['model_name']}  ({res.get('results_file')})")
    for sweep in res.get("sweeps", []):
        accs = ", ".join(f"{k}: {v:.3f}" for k, v in sweep["mean_accuracy"].items())
        console.print(f"  {sweep['dataset']} k={sweep['n_mem']}  mean accuracy by length: "
                      f"{accs}")
    console.print(rich_table(table1_rows([res])))


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]

    def on_term(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        cli.main(args=argv, prog_name="cram-eval", standalone_mode=False)
    except click.exceptions.Abort:
        _interrupted()
    except click.ClickException as exc:
        exc.show()
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
