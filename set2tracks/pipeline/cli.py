"""``flask submissions ...``: the processing queue's maintenance, by hand."""

from __future__ import annotations

from datetime import timedelta

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from set2tracks.extensions import redis_client
from set2tracks.pipeline import maintenance
from set2tracks.pipeline.stages import STALE_AFTER

submissions_cli = AppGroup("submissions", help="Look after the processing queue.")


@submissions_cli.command("sweep")
@click.option(
    "--stale-after",
    type=click.IntRange(min=0),
    default=int(STALE_AFTER.total_seconds()),
    show_default=True,
    help="Seconds without a heartbeat after which a running submission may be abandoned.",
)
@with_appcontext
def sweep_command(stale_after: int) -> None:
    """Queue again (or fail) the submissions whose job was lost."""
    if current_app.config["JOB_RUNNER"] != "rq":
        raise click.ClickException(
            "the embedded profile runs jobs inside the web process, which sweeps when it"
            " starts: restart `make run` instead"
        )
    swept = maintenance.sweep(
        maintenance.rq_job_alive(redis_client(current_app)),
        stale_after=timedelta(seconds=stale_after),
    )
    click.echo(f"queued again: {_ids(swept.requeued)}; failed: {_ids(swept.failed)}")


@submissions_cli.command("clean-work-dir")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=int(maintenance.LEFTOVER_AGE.total_seconds() // 3600),
    show_default=True,
    help="Hours since an entry last changed.",
)
@with_appcontext
def clean_work_dir_command(older_than: int) -> None:
    """Delete what killed jobs left in WORK_DIR."""
    removed = maintenance.clean_work_dir(timedelta(hours=older_than))
    click.echo(f"deleted {len(removed)} leftover(s) from {current_app.config['WORK_DIR']}")
    for name in removed:
        click.echo(f"  {name}")


def _ids(ids: list[int]) -> str:
    return ", ".join(f"#{number}" for number in ids) or "none"
