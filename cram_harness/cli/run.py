"""`cram-eval run`: tasks on models, then the Table-1 summary."""

from __future__ import annotations

import click

from cram_harness.cli.options import (
    batch_size,
    declared,
    engine_options,
    engine_settings,
    include_path,
    ints,
    model_options,
)
from cram_harness.protocols import protocol_named

SIGNALS: list[int] = []  # SIGINT/SIGTERM received (cli.main); the progress display checks it


@click.command()
@click.option("--model", "models",
              help="Model spec(s), comma-separated: hf:REPO[@REV], a directory, gguf:FILE, "
                   "or an alias (cram-eval ls models).")
@click.option("--model-args", metavar="KEY=VALUE,...",
              help="lm-eval's spelling: pretrained=SPEC or a Hub id, revision, dtype, device, "
                   "trust_remote_code, batch_size.")
@click.option("--tasks", required=True,
              help="Task or group names, comma- (or, as in lm-eval, space-) separated.")
@declared("limit", type=str)  # a number or lm-eval's share: spellings.limit reads it
@declared("lengths")
@declared("mem_tokens")
@declared("batch_size", type=str, default="auto", show_default=True)
@model_options
@engine_options
@declared("protocol", callback=lambda ctx, param, name: protocol_named(name))
@declared("past_capacity")
@declared("stop_below")
@declared("data_files")
@declared("output_path")
@include_path
@declared("trust_remote_code")
@click.option("--wandb-args", metavar="KEY=VALUE,...",
              help="Also log the results to Weights & Biases (wandb.init's arguments, e.g. "
                   "project=P,name=N; needs `pip install wandb`).")
@click.option("--quiet", is_flag=True,
              help="No progress: warnings, the summary and the table only (progress is a live "
                   "line on a terminal, plain lines in a log).")
@click.option("--hf-hub-log-args", metavar="KEY=VALUE,...",
              help="Also push the results to a Hub dataset, as lm-eval does: hub_results_org, "
                   "details_repo_name, results_repo_name, push_results_to_hub, "
                   "push_samples_to_hub, public_repo.")
def run(models, model_args, tasks, limit, lengths, mem_tokens, wandb_args, quiet,
        hf_hub_log_args, **params) -> None:
    """Run tasks on one or more models and print the Table-1 summary."""
    from rich.console import Console

    from cram_harness.harness.evaluator import evaluate
    from cram_harness.harness.settings import RunSettings
    from cram_harness.integrations.lm_eval import spellings as lm_eval
    from cram_harness.integrations.sinks import Sinks
    from cram_harness.reporting.log_display import choose_display
    from cram_harness.reporting.tables import rich_table, table1_rows

    models, given = lm_eval.model_args(models, model_args)
    for name in ("device", "dtype", "batch_size"):
        params[name] = given.get(name, params[name])
    params["trust_remote_code"] |= lm_eval.is_true(given.get("trust_remote_code"))
    sinks = Sinks.from_args(wandb_args, hf_hub_log_args)  # bad sink arguments fail first
    settings = RunSettings(
        **engine_settings(params), limit=lm_eval.limit(limit),
        lengths=ints(lengths, "--lengths"), mem_tokens=ints(mem_tokens, "--mem-tokens"),
        **{**params, "batch_size": batch_size(params["batch_size"]),
           "include_path": tuple(params["include_path"])})
    display = choose_display(quiet, stop_requested=lambda: bool(SIGNALS))
    try:
        results = evaluate(models.split(","), tasks.split(","), settings, display)
    finally:
        display.close()
    if results:  # a rank other than 0 of a distributed run has none: rank 0 reports
        _summary(results, Console(), rich_table(table1_rows(results), title=(
            "Table 1" if len(results) == 1 else "Table 1: model comparison")))
        for line in sinks.send(results):
            Console().print(line, markup=False)


def _summary(results: list[dict], console, table) -> None:
    from rich.markup import escape

    for res in results:
        for sweep in res["sweeps"]:
            stop = sweep["stopped"]
            where = f"stopped at {stop['length']}: " if stop["length"] is not None else ""
            console.print(f"[dim]{escape(sweep['dataset'])} k={sweep['n_mem']}: "
                          f"{escape(where + stop['reason'])}[/]")
        console.print(f"results: {res['results_file']}", markup=False, soft_wrap=True)
    console.print(table)
