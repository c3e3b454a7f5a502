"""`cram-eval ls`: the registered tasks, model aliases and data sources, broken plugins
included (listed, not fatal)."""

from __future__ import annotations

import click

from cram_harness.cli.options import include_path


@click.command("ls")
@click.argument("what", type=click.Choice(["tasks", "models", "data"]), metavar="WHAT")
@include_path
def ls(what: str, include_path: tuple[str, ...]) -> None:
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
