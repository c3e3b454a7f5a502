"""The commands of a single crammed text: `export` (cram it into a PEFT adapter) and
`decode` (read it back)."""

from __future__ import annotations

import sys

import click

from cram_harness.cli.options import declared, engine_options, engine_settings, model_options
from cram_harness.config import CramConfig


@click.command()
@click.option("--model", required=True, help="Model spec (cram-eval ls models).")
@click.option("--text", "text_path", required=True, help="A UTF-8 text file, or - for stdin.")
@click.option("--out", required=True, help="Adapter directory to write.")
@click.option("--push-to-hub", "push_to", metavar="REPO",
              help="Also upload the adapter (cram.json and card included) to this Hub repo.")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the repo private.")
@declared("n_mem", CramConfig)
@click.option("--max-tokens", type=int, help="Cut the text to this many tokens.")
@model_options
@engine_options
@click.option("--quiet", is_flag=True, help="No forecast and no progress: the result line only.")
def export(model, text_path, out, push_to, private, n_mem, max_tokens, device, dtype, quiet,
           **params) -> None:
    """Cram a text and write it as a PEFT prompt-tuning adapter (plus cram.json)."""
    from cram_harness.api import cram
    from cram_harness.cli.run import SIGNALS
    from cram_harness.data import decode_text, read_text_file
    from cram_harness.harness.settings import EngineSettings, cli_flag
    from cram_harness.integrations.peft import check_adapter_target
    from cram_harness.models.load import load_model
    from cram_harness.reporting.log_display import choose_display
    from cram_harness.validation import TOKENS, VECTORS, check_value

    settings = EngineSettings(**engine_settings(params))
    settings.check()
    check_value("n_mem", n_mem, VECTORS, cli_flag)
    check_value("max_tokens", max_tokens, TOKENS, cli_flag)
    check_adapter_target(out)  # before any work: never over what export did not write
    text = decode_text(sys.stdin.buffer.read(), "stdin") if text_path == "-" \
        else read_text_file(text_path)
    loaded, tokenizer = load_model(model, dtype=dtype, device=device)
    said = _forecast(model, loaded, tokenizer, text, max_tokens, n_mem)
    if said.known and not quiet:
        click.echo(said.line(), err=True)
    config = settings.config(loaded, n_mem=n_mem)
    display = choose_display(quiet, stop_requested=lambda: bool(SIGNALS))
    display.length_start(f"export {said.tokens} tokens", said.tokens, 1, 0, config.max_steps)
    try:
        (result,) = cram(loaded, text, max_tokens=max_tokens, tokenizer=tokenizer,
                         config=config, on_step=display.step, forecast=False)
        display.length_done(f"export {said.tokens} tokens", said.tokens, result.best_accuracy)
    finally:
        display.close()
    path = result.save_adapter(out)
    click.echo(f"{path}: {result.num_tokens} tokens in {n_mem} vector(s), best accuracy "
               f"{result.best_accuracy:.3f}, greedy exact: {result.greedy_exact}, "
               f"{result.steps} steps")
    if push_to:
        from cram_harness.integrations.peft import push_adapter

        click.echo(f"pushed to {push_adapter(path, push_to, private=private)}")


def _forecast(spec, model, tokenizer, text, max_tokens, n_mem):
    """Before any step: the text's CE against the gain a vector of this model holds, measured
    by an earlier run under results/ where there is one."""
    from pathlib import Path

    from cram_harness import forecast
    from cram_harness.errors import CramError
    from cram_harness.models.info import model_info
    from cram_harness.models.tokens import check_fits, check_tokens_fit, encode_text
    from cram_harness.reporting.tables import load_results
    from cram_harness.results.files import model_dir

    check_fits(model, n_mem, max_tokens)  # what cram() checks first, before a forward pass
    tokens = encode_text(tokenizer, text, max_tokens)
    check_tokens_fit(model, n_mem, [tokens])
    folder = model_dir(Path("results"), spec)
    try:
        measured = load_results([folder]) if folder.is_dir() else []
    except CramError:  # none there, or none readable: no measured number
        measured = []
    gain = forecast.model_gain(spec, model_info(model, tokenizer)["d_model"], measured)
    return forecast.forecast(forecast.text_nats(model, tokens), len(tokens), gain, n_mem)


@click.command()
@click.argument("adapter")
@click.option("--model", help="The base model's spec (default: the one the adapter names).")
@model_options
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
