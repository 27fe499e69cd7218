"""`flask --app webapp retention run` (docs/deploy.md, "Retention")."""

from __future__ import annotations

import click
from flask.cli import AppGroup

retention_cli = AppGroup("retention", help="Delete old submissions and delivery attempts.")


@retention_cli.command("run")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=None,
    help="Submissions (or attempts) per transaction [default: 500].",
)
@click.option(
    "--max",
    "max_per_run",
    type=click.IntRange(1),
    default=None,
    help="Stop after deleting this many submissions (and as many attempts) [default: no limit].",
)
def run_command(batch_size: int | None, max_per_run: int | None) -> None:
    """Apply SUBMISSION_RETENTION_DAYS and LOG_RETENTION_DAYS now, and print what was done.

    The periodic job does the same every hour, up to a cap per run; this
    command goes on until nothing old is left (unless --max says otherwise).
    """
    from webapp.retention.runs import BATCH_SIZE, run_retention

    result = run_retention("command", batch_size=batch_size or BATCH_SIZE, max_per_run=max_per_run)
    if result is None:
        click.echo(
            "Retention is off: SUBMISSION_RETENTION_DAYS and LOG_RETENTION_DAYS are unset. "
            "Nothing was deleted."
        )
        return
    for line in summary(result):
        click.echo(line)


def summary(result) -> list[str]:
    counts = result.counts
    lines = []
    if result.submission_days is not None:
        lines.append(
            f"Submissions older than {result.submission_days} days: "
            f"{counts.submissions_deleted} deleted (with {counts.logs_deleted} delivery logs "
            f"and {counts.files_deleted} files); kept {counts.kept_pending} with a pending "
            f"delivery, {counts.kept_recent} with a newer version, "
            f"{counts.kept_busy} in use (next run)."
        )
    else:
        lines.append("Submissions: kept (SUBMISSION_RETENTION_DAYS is unset).")
    if result.log_days is not None:
        lines.append(
            f"Attempts of deliveries finished more than {result.log_days} days ago: "
            f"{counts.attempts_deleted} deleted."
        )
    else:
        lines.append("Delivery attempts: kept (LOG_RETENTION_DAYS is unset).")
    if not result.complete:
        lines.append("Stopped at the limit of this run (--max); run it again to go on.")
    return lines
