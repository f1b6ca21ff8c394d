"""The `papers` command line."""

from __future__ import annotations

import csv
import enum
import io
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="Daily Papers digests in, a versioned DuckDB-queryable dataset out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True)

LandingOption = Annotated[
    Path | None,
    typer.Option("--landing", help="Folder digests land in [env: PAPERS_LANDING_DIR]"),
]
WarehouseOption = Annotated[
    str | None,  # not a Path: it would fold s3://bucket into s3:/bucket
    typer.Option(
        "--warehouse",
        help="Warehouse folder, or s3://bucket/prefix [env: PAPERS_WAREHOUSE_DIR]",
    ),
]


class OutputFormat(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def fail(message: str) -> typer.Exit:
    """One plain line that says what is wrong and what to do; exit code 1."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _dirs(landing: Path | None, warehouse: str | None):
    from pipelines.core.warehouse import WarehousePaths, resolve_dirs

    landing_dir, warehouse_dir = resolve_dirs(landing, warehouse)
    if "%" in str(warehouse_dir) or "?" in str(warehouse_dir):
        raise fail(
            f"the warehouse path {warehouse_dir} contains '%' or '?', which Delta Lake and "
            "DuckDB cannot handle in paths: choose a folder without them"
        )
    return landing_dir, WarehousePaths(warehouse_dir)


def _published_paths(warehouse: str | None):
    _, paths = _dirs(None, warehouse)
    if paths.remote:  # the local catalog may lag what other machines published
        _refresh_remote_catalog(paths)
    if not paths.catalog.exists():
        raise fail(f"no release in {paths.root}: run `papers ingest` first")
    return paths


def _refresh_remote_catalog(paths) -> None:
    from pipelines.core.catalog import catalog_release
    from pipelines.core.publish import latest_release, refresh_catalog

    try:
        latest = latest_release(paths)
    except OSError as error:  # deltalake's errors for unreachable storage are OSError
        raise fail(
            f"cannot read {paths.root} ({_cause(error)}): check the AWS_* settings"
        ) from error
    if latest is not None and catalog_release(paths.catalog) != latest["release"]:
        refresh_catalog(paths)


class _RichProgress:
    """Draws the parse step's progress bar."""

    def __init__(self, console: Console):
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task = None

    def start(self, total: int, description: str) -> None:
        self._bar.start()
        self._task = self._bar.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        if self._task is not None:
            self._bar.advance(self._task, steps)

    def stop(self) -> None:
        self._bar.stop()


@app.command()
def ingest(
    landing: LandingOption = None,
    warehouse: WarehouseOption = None,
    verbose: Annotated[bool, typer.Option(help="Show Dagster's run log")] = False,
) -> None:
    """Run the Dagster asset graph in process over the landing folder and publish a release
    (none when nothing changed)."""
    outcome = _run_ingest(landing, warehouse, verbose)
    _print_outcome(outcome)


def _run_ingest(landing, warehouse, verbose):
    landing_dir, paths = _dirs(landing, warehouse)
    if not landing_dir.is_dir():
        raise fail(f"landing folder {landing_dir} does not exist: create it or pass --landing DIR")
    try:
        if not paths.remote:
            paths.local_root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise fail(
            f"cannot create warehouse folder {paths.root} ({error.strerror}): pass --warehouse DIR"
        ) from error
    import warnings

    # Dagster's beta/preview notices for features chosen on purpose are not news to a user.
    warnings.filterwarnings("ignore", message=r".* is currently in (beta|preview)")
    from pipelines.defs.inprocess import ingest as run

    try:
        with console.status("Running the asset graph…"):
            return run(
                landing_dir,
                paths.root,
                progress=_RichProgress(console),
                log_level="DEBUG" if verbose else "CRITICAL",  # failures: one line below
            )
    except Exception as error:  # the run log (--verbose) has the details
        raise fail(
            f"ingest failed: {_cause(error)}. Nothing published was changed; "
            "`papers doctor` checks the warehouse, --verbose shows the run log"
        ) from error


def _cause(error: BaseException) -> str:
    """The innermost error's first line: what a person can act on."""
    while error.__cause__ is not None:
        error = error.__cause__
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _print_outcome(outcome) -> None:
    for message in outcome.skipped:
        err.print(f"[yellow]skipped:[/yellow] {message}", highlight=False)
    release = outcome.release
    if release is None:
        console.print(f"{outcome.n_files} digest files; nothing published yet.")
        return
    verb = "Published" if outcome.published else "No change; latest is"
    console.print(
        f"{outcome.n_files} digest files. {verb} release {release['release']}: "
        f"{release['papers_rows']:,} papers, {release['appearances_rows']:,} appearances, "
        f"{release['digests_rows']:,} digests, {release['quarantine_rows']:,} quarantined "
        f"(+{release['papers_added']} added, ~{release['papers_updated']} updated, "
        f"-{release['papers_removed']} removed)."
    )


@app.command()
def demo(
    landing: LandingOption = None,
    warehouse: WarehouseOption = None,
    digests: Annotated[
        int, typer.Option(help="Synthetic digests to write if landing is empty")
    ] = 5,
) -> None:
    """Ingest the landing folder and show what came out. An empty landing folder first gets
    SYNTHETIC sample digests (synthetic-YYYY-MM-DD.txt), so this works on a fresh clone."""
    from pipelines.core.synthetic import write_digests

    landing_dir, paths = _dirs(landing, warehouse)
    if not landing_dir.exists() or not any(landing_dir.iterdir()):
        written = write_digests(landing_dir, digests, seed=0)
        console.print(
            f"[bold]Landing folder was empty:[/bold] wrote {len(written)} SYNTHETIC sample "
            f"digests to {landing_dir} (generated, not real papers)."
        )
    outcome = _run_ingest(landing_dir, paths.root, verbose=False)
    _print_outcome(outcome)
    _run_sql(
        paths,
        "SELECT paper_id, title, first_seen, n_appearances FROM papers "
        "ORDER BY n_appearances DESC, first_seen, paper_id LIMIT 5",
        None,
        OutputFormat.table,
        title="papers (top 5 by appearances)",
    )
    _run_sql(
        paths,
        "SELECT * FROM releases ORDER BY release DESC LIMIT 1",
        None,
        OutputFormat.table,
        title="latest release",
        vertical=True,
    )
    hint = 'papers sql "SELECT count(*) FROM papers"'
    console.print(f"Query it yourself: [bold]duckdb {paths.catalog}[/bold] or [bold]{hint}[/bold]")


@app.command()
def sql(
    query: Annotated[
        str, typer.Argument(help="SQL over digests, appearances, papers, quarantine and releases")
    ],
    release: Annotated[int | None, typer.Option(help="Query this older release")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    warehouse: WarehouseOption = None,
) -> None:
    """Run SQL against the latest release (or --release N)."""
    _run_sql(_published_paths(warehouse), query, release, format)


def _connect(paths, release: int | None):
    """The catalog, read only; for an older release, its `r<N>` schema made the default."""
    import duckdb

    from pipelines.core.catalog import connect, release_schema

    try:
        con = connect(paths, read_only=True)
        kept = con.execute("SELECT time_travel_releases FROM catalog_info").fetchall()[0][0]
    except duckdb.Error as error:
        raise fail(
            f"catalog {paths.catalog} is damaged ({_cause(error)}): "
            "`papers doctor --repair` rebuilds it"
        ) from error
    if release is None:
        return con
    if release not in kept:
        con.close()
        window = f"releases {min(kept)} to {max(kept)}" if kept else "no release"
        raise fail(
            f"release {release} is not retained: the catalog holds {window} "
            "(`papers releases` lists them)"
        )
    con.execute(f"USE {release_schema(release)}")
    return con


def _run_sql(paths, query, release, output: OutputFormat, title=None, vertical=False) -> None:
    con = _connect(paths, release)
    try:
        columns, rows = _fetch(con, query)
    finally:
        con.close()
    _emit(columns, rows, output, title, vertical)


def _fetch(con, query: str, params=()) -> tuple[list[str], list[tuple]]:
    """Columns and rows of a query; a failure is one plain line."""
    import duckdb

    try:
        cursor = con.execute(query, params)
        columns = [d[0] for d in cursor.description] if cursor.description else []
        return columns, cursor.fetchall() if columns else []
    except duckdb.IOException as error:
        raise fail(
            f"query failed: {_cause(error)}; a published file is missing or unreadable: "
            "`papers doctor` says what is wrong"
        ) from error
    except duckdb.Error as error:
        raise fail(f"query failed: {_cause(error)}") from error


def _emit(columns, rows, output: OutputFormat, title=None, vertical=False) -> None:
    if output is OutputFormat.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
    elif output is OutputFormat.json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        sys.stdout.write(json.dumps(records, default=str, ensure_ascii=False, indent=1) + "\n")
    elif vertical and len(rows) == 1:
        table = Table("column", "value", title=title)
        for name, value in zip(columns, rows[0], strict=True):
            table.add_row(name, _cell(value))
        console.print(table)
    else:
        table = Table(*columns, title=title)
        for row in rows:
            table.add_row(*(_cell(v) for v in row))
        console.print(table)
        if not rows:
            console.print("(no rows)")


def _cell(value, limit: int = 80) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command()
def releases(
    warehouse: WarehouseOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
) -> None:
    """List published releases."""
    from pipelines.core.publish import releases as read_releases

    paths = _published_paths(warehouse)
    frame = read_releases(paths).select(
        "release",
        "created_at",
        "papers_rows",
        "appearances_rows",
        "digests_rows",
        "quarantine_rows",
        "papers_added",
        "papers_updated",
        "papers_removed",
        "content_hash",
    )
    _emit(frame.columns, frame.rows(), format, title="releases")


@app.command()
def diff(
    a: Annotated[int, typer.Argument(help="Older release")],
    b: Annotated[int, typer.Argument(help="Newer release")],
    warehouse: WarehouseOption = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
) -> None:
    """Papers added, removed and updated (with the columns that changed) from A to B."""
    from pipelines.core.diff import diff_papers
    from pipelines.core.publish import get_release, read_release_table

    paths = _published_paths(warehouse)
    rows = {}
    for number in (a, b):
        rows[number] = get_release(paths, number)
        if rows[number] is None:
            raise fail(f"no release {number}: `papers releases` lists the published ones")
    changes = diff_papers(
        read_release_table(paths, rows[a], "papers"), read_release_table(paths, rows[b], "papers")
    )
    _emit(changes.columns, changes.rows(), format, title=f"papers: release {a} → {b}")
    if format is OutputFormat.table:
        counts = changes.group_by("change").len().sort("change").rows()
        console.print(", ".join(f"{n} {c}" for c, n in counts) or "no changes")


@app.command()
def doctor(
    warehouse: WarehouseOption = None,
    repair: Annotated[bool, typer.Option(help="Fix what can be fixed")] = False,
) -> None:
    """Check the warehouse: Delta logs, files of the latest release, schemas, the catalog."""
    from pipelines.core import doctor as checks

    _, paths = _dirs(None, warehouse)
    if not paths.storage.exists("tables"):
        raise fail(f"no warehouse at {paths.root}: run `papers ingest` or pass --warehouse DIR")
    if repair:
        for line in checks.repair(paths):
            console.print(f"[green]repaired:[/green] {line}", highlight=False)
    findings = checks.diagnose(paths)
    for finding in findings:
        err.print(
            f"[red]problem:[/red] {finding.problem}\n  [bold]fix:[/bold] {finding.fix}",
            highlight=False,
            soft_wrap=True,
        )
    if findings:
        raise typer.Exit(1)
    console.print(f"{paths.root}: healthy.")


@app.command()
def card(
    release: Annotated[int, typer.Argument(help="Release number")],
    warehouse: WarehouseOption = None,
) -> None:
    """Print the dataset card (markdown) of a release: counts, schema, changes, sources."""
    from pipelines.core.card import card_for

    text = card_for(_published_paths(warehouse), release)
    if text is None:
        raise fail(f"no release {release}: `papers releases` lists the published ones")
    sys.stdout.write(text)


@app.command()
def related(
    paper: Annotated[str, typer.Argument(help="A paper_id, a title, or part of a title")],
    release: Annotated[int | None, typer.Option(help="Look in this older release")] = None,
    format: Annotated[OutputFormat, typer.Option("--format", "-f")] = OutputFormat.table,
    warehouse: WarehouseOption = None,
) -> None:
    """The papers most related to PAPER (TF-IDF similarity of title and abstract)."""
    from pipelines.core.lookup import PaperNotFound, find_paper

    con = _connect(_published_paths(warehouse), release)
    try:
        paper_id, title = find_paper(con, paper)
        columns, rows = _fetch(
            con,
            "SELECT r.rank, r.score, r.related_id AS paper_id, p.title, p.first_seen "
            "FROM related_papers r JOIN papers p ON p.paper_id = r.related_id "
            "WHERE r.paper_id = ? ORDER BY r.rank",
            [paper_id],
        )
    except PaperNotFound as error:
        raise fail(str(error)) from error
    finally:
        con.close()
    _emit(columns, rows, format, title=f"related to {title} ({paper_id})")


def main() -> None:  # pragma: no cover - console script shim
    app()
