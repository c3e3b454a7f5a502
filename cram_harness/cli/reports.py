"""The commands that read results files: `leaderboard`, `report` and `show`."""

from __future__ import annotations

import click


@click.command()
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


@click.command()
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


@click.command()
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
