"""The `cram-eval` command. Parses arguments and shows results; the work is done by
`evaluator.evaluate`. Heavy imports (torch, transformers) happen only inside commands."""

from __future__ import annotations

import errno
import os
import signal
import sys
import traceback
import warnings

import click

from cram_harness.errors import CramError


def _ints(value: str | None, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise CramError(f"{name} takes comma-separated integers, got {value!r}") from None


_SIGNALS: list[int] = []  # SIGINT/SIGTERM received; the progress display checks it


def _batch_size(value: str) -> int | None:
    if value == "auto":
        return None
    try:
        size = int(value)
    except ValueError:
        size = 0
    if size < 1:
        raise CramError(f"--batch-size takes a positive integer or auto, got {value!r}")
    return size


class DefaultRunGroup(click.Group):
    """`cram-eval --model ...` means `cram-eval run --model ...` (lm-eval's habit), and a run
    takes lm-eval's spellings of its options (lm_eval_spellings.py)."""

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


@cli.command()
@click.option("--model", "models",
              help="Model spec(s), comma-separated: hf:REPO[@REV], a directory, gguf:FILE, "
                   "or an alias (cram-eval ls models).")
@click.option("--model-args", metavar="KEY=VALUE,...",
              help="lm-eval's spelling: pretrained=SPEC or a Hub id, revision, dtype, device, "
                   "trust_remote_code, batch_size.")
@click.option("--tasks", required=True,
              help="Task or group names, comma- (or, as in lm-eval, space-) separated.")
@click.option("--limit", help="Texts per length, or below 1 a share of each task's (default: "
                              "each task's own).")
@click.option("--lengths", help="Token lengths to sweep, e.g. 8,16,32 (default: the task's).")
@click.option("--mem-tokens", help="Numbers of [mem] vectors, e.g. 1,2,4 (default: the task's).")
@click.option("--batch-size", default="auto", show_default=True,
              help="Texts optimized together; auto: as many as the free memory holds.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--dtype", default="auto", show_default=True,
              help="The weights: auto (fp32, the paper's), fp32, bf16, fp16.")
@click.option("--autocast", type=click.Choice(["auto", "bf16", "off"]), default="auto",
              show_default=True,
              help="Compute precision over fp32 weights: auto is the paper's (bf16 autocast "
                   "on a GPU, fp32 for Pythia and on a CPU).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the texts drawn and each text's initial vectors.")
@click.option("--max-steps", type=int, help="Optimizer steps per text (paper: 5000).")
@click.option("--lr", type=float, help="Learning rate (paper: 1e-2).")
@click.option("--min-margin", type=float,
              help="Converged only when every target logit beats the runner-up by this much.")
@click.option("--temperature", type=float,
              help="CE temperature of the training loss (paper: 1; below 1 is colder).")
@click.option("--subspace", type=int,
              help="Optimize only this many coordinates along the token embeddings' top "
                   "principal directions (default: all of them).")
@click.option("--checkpointing", is_flag=True,
              help="Activation checkpointing: less memory for long texts, for a second "
                   "forward pass per layer.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the model: faster steps after a compile of about a minute "
                   "(worth it for runs of hundreds of steps); results differ in the last bits.")
@click.option("--protocol", type=click.Choice(["paper", "fast", "max"]), default="paper",
              show_default=True,
              help="paper: every text at every length. fast: texts climb the lengths while "
                   "lossless, warm-started from their shorter solution (far fewer steps). "
                   "max: climbs while greedy decoding is exact, with a second start where a "
                   "text loses a length, and later work's levers (lr scaled to the "
                   "embeddings, logit margin 0.5) unless set.")
@click.option("--past-capacity", type=int,
              help="Stop the sweep after this many lengths in a row whose mean accuracy is "
                   "below 0.99: past capacity, with full vectors for the gains (default: the "
                   "task's, 3; 0 runs the whole grid).")
@click.option("--stop-below", type=float,
              help="Also stop once a length's mean accuracy falls below this floor "
                   "(default: the task's, none).")
@click.option("--data-files", help="Local texts for every task: a directory, a glob, or a "
                                   ".txt/.jsonl/.csv/.parquet file.")
@click.option("--output-path", default="results", show_default=True,
              help="Results go to OUTPUT_PATH/<model>/ (records, results, samples).")
@click.option("--include-path", multiple=True, help="Extra directory of task YAML.")
@click.option("--trust-remote-code", is_flag=True, help="Allow model code from the hub.")
@click.option("--wandb-args", metavar="KEY=VALUE,...",
              help="Also log the results to Weights & Biases (wandb.init's arguments, e.g. "
                   "project=P,name=N; needs `pip install wandb`).")
@click.option("--hf-hub-log-args", metavar="KEY=VALUE,...",
              help="Also push the results to a Hub dataset, as lm-eval does: hub_results_org, "
                   "details_repo_name, results_repo_name, push_results_to_hub, "
                   "push_samples_to_hub, public_repo.")
def run(models, model_args, tasks, limit, lengths, mem_tokens, batch_size, device, dtype,
        autocast, seed, max_steps, lr, min_margin, temperature, subspace, checkpointing,
        compile_, protocol, past_capacity, stop_below, data_files, output_path, include_path,
        trust_remote_code, wandb_args, hf_hub_log_args) -> None:
    """Run tasks on one or more models and print the Table-1 summary."""
    from rich.console import Console
    from rich.markup import escape

    from cram_harness.harness.evaluator import RunSettings, evaluate
    from cram_harness.integrations.lm_eval import spellings as lm_eval
    from cram_harness.integrations.sinks import Sinks
    from cram_harness.reporting.console import RichDisplay
    from cram_harness.reporting.tables import rich_table, table1_rows

    models, given = lm_eval.model_args(models, model_args)
    device, dtype = given.get("device", device), given.get("dtype", dtype)
    batch_size = given.get("batch_size", batch_size)
    trust_remote_code = trust_remote_code or lm_eval.is_true(given.get("trust_remote_code"))
    sinks = Sinks.from_args(wandb_args, hf_hub_log_args)  # bad sink arguments fail first
    settings = RunSettings(
        limit=lm_eval.limit(limit), lengths=_ints(lengths, "--lengths"),
        mem_tokens=_ints(mem_tokens, "--mem-tokens"), batch_size=_batch_size(batch_size),
        device=device, dtype=dtype, autocast=autocast, seed=seed, max_steps=max_steps, lr=lr,
        min_margin=min_margin, temperature=temperature, subspace=subspace,
        checkpointing=checkpointing, compile=compile_,
        data_files=data_files, past_capacity=past_capacity, stop_below=stop_below,
        output_path=output_path,
        include_path=tuple(include_path), trust_remote_code=trust_remote_code,
        protocol=protocol)
    display = RichDisplay(stop_requested=lambda: bool(_SIGNALS))
    try:
        results = evaluate(models.split(","), tasks.split(","), settings, display)
    finally:
        display.close()
    if not results:  # a rank other than 0 of a distributed run: rank 0 reports
        return
    console = Console()
    for res in results:
        for sweep in res["sweeps"]:
            stop = sweep["stopped"]
            where = f"stopped at {stop['length']}: " if stop["length"] is not None else ""
            console.print(f"[dim]{escape(sweep['dataset'])} k={sweep['n_mem']}: "
                          f"{escape(where + stop['reason'])}[/]")
        console.print(f"results: {res['results_file']}", markup=False, soft_wrap=True)
    title = "Table 1" if len(results) == 1 else "Table 1: model comparison"
    console.print(rich_table(table1_rows(results), title=title))
    for line in sinks.send(results):
        console.print(line, markup=False)


@cli.command("ls")
@click.argument("what", type=click.Choice(["tasks", "models", "data"]), metavar="WHAT")
@click.option("--include-path", multiple=True, help="Extra directory of task YAML.")
def ls(what: str, include_path) -> None:
    """List registered tasks (and groups), model aliases, or data sources.

    WHAT is one of tasks, models, data."""
    from cram_harness.harness.registry import DATA, TASK_PLUGINS, all_tasks
    from cram_harness.harness.tasks import GroupConfig

    if what == "tasks":
        import textwrap

        for name, item in sorted(all_tasks(include_path).items()):
            kind = "group" if isinstance(item, GroupConfig) else item.kind
            head = f"{name:28} {kind:17} "  # within 100 columns: descriptions wrap
            click.echo(textwrap.fill(item.description or "-", 100, initial_indent=head,
                                     subsequent_indent=" " * len(head)))
        broken = TASK_PLUGINS.problems()
    elif what == "models":
        from cram_harness.models.families import family_lines
        from cram_harness.models.load import CHECKPOINTS, MODELS

        for name in MODELS.names():
            click.echo(f"{name:16} {CHECKPOINTS.get(name, '')}".rstrip())
        click.echo("(and any hf:REPO[@REV], local directory, or gguf:FILE)")
        click.echo("\n".join(family_lines()))
        broken = MODELS.problems()
    else:
        for name in DATA.names():
            click.echo(name)
        broken = DATA.problems()
    for name, why in broken.items():  # listed, not fatal: only runs that use them fail
        click.echo(f"{name:28} broken: {why}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "fmt_name", type=click.Choice(["table", "markdown", "csv", "html"]),
              default="table", show_default=True,
              help="A rich table, or text to paste (markdown), load (csv) or publish (html).")
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file.")
def leaderboard(paths, fmt_name, output) -> None:
    """Rank models from results files or directories (PATHS, searched recursively)."""
    from pathlib import Path

    from cram_harness.atomic import write_text_atomic
    from cram_harness.reporting.tables import (
        is_leaderboard,
        load_results,
        render,
        rich_table,
        table1_rows,
    )
    from cram_harness.results.files import check_report_output

    if output:  # before any reading: never over a file that is not a leaderboard
        check_report_output(Path(output), is_leaderboard, "leaderboard")
    rows = table1_rows(load_results(paths))
    if fmt_name == "table":
        from rich.console import Console

        if output:
            import io

            buffer = io.StringIO()
            Console(file=buffer, width=160).print(rich_table(rows, "cram-harness leaderboard"))
            write_text_atomic(Path(output), buffer.getvalue())
        else:
            Console().print(rich_table(rows, "cram-harness leaderboard"))
        return
    text = render(rows, fmt_name)
    if output:
        write_text_atomic(Path(output), text)
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--output", "-o", default="report", show_default=True,
              help="Directory for the figures and report.html.")
@click.option("--format", "formats", multiple=True, type=click.Choice(["png", "svg", "pdf"]),
              default=("png",), show_default=True, help="Figure formats (repeatable).")
def report(paths, output, formats) -> None:
    """The paper's figures and a self-contained report.html from PATHS: results files or
    directories (searched recursively)."""
    from pathlib import Path

    from cram_harness.reporting.html import is_report, write_report
    from cram_harness.reporting.tables import load_results
    from cram_harness.results.files import check_report_output

    check_report_output(Path(output) / "report.html", is_report, "report", "--output")
    page = write_report(load_results(paths), Path(output), formats=tuple(formats))
    click.echo(f"report: {page}")


@cli.command()
@click.option("--model", required=True, help="Model spec (cram-eval ls models).")
@click.option("--text", "text_path", required=True, help="A UTF-8 text file, or - for stdin.")
@click.option("--out", required=True, help="Adapter directory to write.")
@click.option("--push-to-hub", "push_to", metavar="REPO",
              help="Also upload the adapter (cram.json and card included) to this Hub repo.")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo private.")
@click.option("--mem-tokens", type=int, default=1, show_default=True,
              help="Number of [mem] vectors.")
@click.option("--max-tokens", type=int, help="Cut the text to this many tokens.")
@click.option("--max-steps", type=int, help="Optimizer steps (paper: 5000).")
@click.option("--lr", type=float, help="Learning rate (paper: 1e-2).")
@click.option("--min-margin", type=float,
              help="Converged only when every target logit beats the runner-up by this much.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds the initial vectors.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--dtype", default="auto", show_default=True,
              help="The weights: auto (fp32, the paper's), fp32, bf16, fp16.")
def export(model, text_path, out, push_to, private, mem_tokens, max_tokens, max_steps, lr,
           min_margin, seed, device, dtype) -> None:
    """Cram a text and write it as a PEFT prompt-tuning adapter (plus cram.json)."""
    from cram_harness.api import cram
    from cram_harness.data import decode_text, read_text_file
    from cram_harness.integrations.peft import check_adapter_target
    from cram_harness.models.load import load_model, resolve_autocast
    from cram_harness.validation import check_options, cli_flag

    check_options(dict(mem_tokens=mem_tokens, max_tokens=max_tokens, max_steps=max_steps, lr=lr,
                       min_margin=min_margin, seed=seed), cli_flag)
    check_adapter_target(out)  # before any work: never over what export did not write
    text = decode_text(sys.stdin.buffer.read(), "stdin") if text_path == "-" \
        else read_text_file(text_path)
    options = {k: v for k, v in dict(max_steps=max_steps, lr=lr, min_margin=min_margin).items()
               if v is not None}
    loaded, tokenizer = load_model(model, dtype=dtype, device=device)
    (result,) = cram(loaded, text, n_mem=mem_tokens, max_tokens=max_tokens,
                     tokenizer=tokenizer, seed=seed, dtype=resolve_autocast("auto", loaded),
                     **options)
    path = result.save_adapter(out)
    click.echo(f"{path}: {result.num_tokens} tokens in {mem_tokens} vector(s), best accuracy "
               f"{result.best_accuracy:.3f}, greedy exact: {result.greedy_exact}, "
               f"{result.steps} steps")
    if push_to:
        from cram_harness.integrations.peft import push_adapter

        click.echo(f"pushed to {push_adapter(path, push_to, private=private)}")


@cli.command()
@click.argument("adapter")
@click.option("--model", help="The base model's spec (default: the one the adapter names).")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--dtype", default="auto", show_default=True,
              help="The weights: auto (fp32), fp32, bf16, fp16.")
def decode(adapter, model, device, dtype) -> None:
    """Print the text of an adapter by greedy decoding; exit 1 if it does not match."""
    from cram_harness.api import decode_adapter
    from cram_harness.integrations.peft import adapter_base_spec
    from cram_harness.models.load import load_model

    loaded, tokenizer = load_model(model or adapter_base_spec(adapter), device=device,
                                   dtype=dtype)
    decoded = decode_adapter(adapter, loaded, tokenizer)
    click.echo(decoded.text)
    click.echo(f"matches the stored text hash: {'yes' if decoded.matches else 'no'}", err=True)
    if not decoded.matches:
        sys.exit(1)


@cli.command()
@click.argument("path")
def show(path: str) -> None:
    """Print one results file again."""
    from rich.console import Console

    from cram_harness.reporting.tables import load_results, rich_table, table1_rows

    res = load_results([path])[-1]  # in a directory: the newest results file
    console = Console()
    console.print(f"{res['model_name']}  ({res.get('results_file')})", markup=False,
                  soft_wrap=True)
    for sweep in res.get("sweeps", []):
        accs = ", ".join(f"{k}: {v:.3f}" for k, v in sweep["mean_accuracy"].items())
        console.print(f"  {sweep.get('dataset', '?')} k={sweep.get('n_mem', 1)}  mean accuracy "
                      f"by length: {accs}", markup=False)
    console.print(rich_table(table1_rows([res])))


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not debug:
        warnings.formatwarning = _one_line_warning  # not Python's file:line and source

    def on_signal(signum, frame):
        if _SIGNALS:  # a second Ctrl-C while the first unwinds: leave now, quietly; every
            os._exit(130)  # record is a whole line already, a half line is skipped on resume
        _SIGNALS.append(signum)  # kept: a library may swallow the KeyboardInterrupt below
        raise KeyboardInterrupt

    _SIGNALS.clear()
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        _run_cli(argv, debug)
    finally:
        if not _SIGNALS:  # after an interruption ours stays: threads may still be joined
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
    except OSError as exc:
        if debug:
            raise
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            click.echo(f"error: the disk is full ({exc.filename or 'writing results'}): free "
                       "space and rerun the same command to resume; finished samples are "
                       "kept", err=True)
            sys.exit(2)
        click.echo(f"error: {exc} (rerun with --debug for the traceback)", err=True)
        sys.exit(1)
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
