"""The `capflow` command line. Heavy imports happen inside commands, so --help is quick."""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from flows.dataset import remember_table
from flows.defaults import DEFAULT_CRON, DEFAULT_POOL
from flows.environment import apply_quiet_offline_defaults
from flows.terminal import inert

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)
_STATE: dict[str, Any] = {"debug": False, "endpoint_url": None}  # for the one-line errors


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks, not one line")] = False,
) -> None:
    _STATE["debug"] = debug


console = Console()
notices = Console(stderr=True)  # notes that must not mix into --json output

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="YAML run config")]
LanceOpt = Annotated[str | None, typer.Option("--lance-uri", help="LanceDB folder or s3:// URI")]


class Terminated(SystemExit):
    """SIGTERM, raised in the main thread so every cleanup (the temporary API) runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(143)


STOPPED_CODES = (130, 143)  # Ctrl-C, SIGTERM


def _leave_now(code: int) -> None:
    """Exit a stopped run without the interpreter's teardown. By then what landed is
    committed and the temporary API is stopped; what the teardown has left to do is a full
    garbage collection over the modules a run loads (torch, transformers, Prefect). On a
    2-core box with three busy processes that took 3 s of the 4-5 s a Ctrl-C needed
    (0.6-1.6 s without it), and a loaded CI run once took 11 s to stop."""
    import logging
    import sys

    logging.shutdown()  # the run's log file
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _flow_command(fn: Any, *args: Any, log_dir: Path | None = None) -> Any:
    """Run a flow-running command: on a temporary Prefect API of its own when none is
    configured, stopped when the command ends; Ctrl-C ends it in seconds, exit 130."""
    from prefect.exceptions import TerminationSignal

    from flows.prefect_api import temporary_api

    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
    try:
        with temporary_api(log_dir):
            return fn(*args)
    except KeyboardInterrupt:
        notices.print(
            "[yellow]interrupted[/]: what landed is committed and recorded; "
            "run the same command again to resume",
            soft_wrap=True,
        )
        raise typer.Exit(130) from None
    except (Terminated, TerminationSignal):
        notices.print("terminated: run the same command again to resume", soft_wrap=True)
        raise typer.Exit(143) from None


def quiet_prefect_console(verbose: bool) -> None:
    """Before Prefect is imported: its INFO lines go to the Prefect UI and the run's log
    file, not between the progress bars (unless -v)."""
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _log_to_file(workdir: Path) -> Path:
    """Every INFO line of Prefect and capflow, to WORKDIR/logs/run-<time>.log."""
    import logging

    path = Path(workdir) / "logs" / f"run-{datetime.now(UTC):%Y%m%dT%H%M%S}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for name in ("prefect", "flows", "tasks", "storage", "quality"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
    return path


def _run_with_progress(config: Any) -> dict[str, Any]:
    return _flow_command(_curate_with_progress, config, log_dir=Path(config.workdir))


def _curate_with_progress(config: Any) -> dict[str, Any]:
    from flows import progress
    from flows.curate import QualityGateFailed, run_curate

    log_file = _log_to_file(Path(config.workdir))
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
    ) as bar:
        task_id = bar.add_task("listing objects and starting Prefect", total=None)
        clips_id = bar.add_task("clips captioned", total=0, visible=False)
        now_id = bar.add_task("", total=None, visible=False)

        def on_event(event: str, detail: str) -> None:
            if event == "planned":
                bar.update(task_id, total=int(detail), description="objects")
            elif event == "stage":
                bar.update(now_id, visible=True, description=f"  now: {inert(detail)}")
            elif event == "prepared":
                clips = int(detail.partition(" ")[0])
                total = (bar.tasks[clips_id].total or 0) + clips
                bar.update(clips_id, total=total, visible=True)
            elif event == "captioned":
                bar.advance(clips_id)
            elif event == "finished":
                outcome, _, uri = detail.partition(" ")
                bar.advance(task_id)
                bar.console.log(f"{outcome:<11} {inert(uri)}")
                if bar.tasks[task_id].finished:
                    bar.update(now_id, visible=False)

        unsubscribe = progress.subscribe(on_event)
        try:
            report = run_curate(config)
        except QualityGateFailed as e:
            console.print(f"[red]run failed its quality gate:[/] {inert(str(e))}")
            raise typer.Exit(1) from e
        finally:
            unsubscribe()
    notices.print(f"[dim]log: {inert(str(log_file))}[/]", highlight=False)
    return report


def _print_report(report: dict[str, Any]) -> None:
    console.print(
        f"objects seen {report['seen']}: landed {report['landed']}, quarantined "
        f"{report['quarantined']}, skipped {report['skipped']}, failed {report['failed']}; "
        f"{report['clips_landed']} clip(s) landed in {report['wall_s']:.1f} s"
    )
    for reason, n in sorted(report["reasons"].items()):
        console.print(f"  quarantined: {n} x {reason}")
    if report.get("clips_gated"):
        passed = report["clips_gated"] - report["clips_failed_gate"]
        console.print(f"quality gate: {passed} of {report['clips_gated']} clips passed")
    if report.get("data_docs"):
        console.print(f"Data Docs: {report['data_docs']}")


class _ClipText:
    """CLIP's text tower as a TextEmbedder."""

    def __init__(self, featurizer: Any) -> None:
        self.featurizer = featurizer

    def embed(self, texts: list[str]) -> Any:
        return self.featurizer.embed_text(texts)


def _search(
    text: str,
    k: int,
    where: str | None,
    config: Any,
    hybrid: bool = False,
    image: bool = False,
    include_duplicates: bool = False,
) -> list[Any]:
    from storage.lance_store import LanceStore
    from storage.search import search_captions, search_keyframes
    from tasks.embed import load_embedder
    from tasks.features import ClipFeaturizer, load_featurizer

    embed = config.embed
    store = LanceStore(config.lance_uri, config.lance_storage_options())
    if image:
        featurizer = load_featurizer(config.keyframes.clip_model)
        if not isinstance(featurizer, ClipFeaturizer):
            raise typer.BadParameter("--image needs a CLIP model: set keyframes.clip_model")
        return search_keyframes(text, _ClipText(featurizer), store, k, where, include_duplicates)
    embedder = load_embedder(embed.model, embed.device, embed.batch_size)
    return search_captions(text, embedder, store, k, where, hybrid, include_duplicates)


def _hits_table(hits: list[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("score", "source", "span (s)", "aesthetic", "caption"):
        table.add_column(col)
    for h in hits:
        table.add_row(
            f"{h.score:.3f}",
            inert(h.source),
            f"{h.start_s:.1f}-{h.end_s:.1f}",
            f"{h.aesthetic_score:.1f}",
            inert(h.caption[:90]),
        )
    return table


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="where everything lives")] = Path("capflow-demo"),
) -> None:
    """Synthesise sample videos, serve them from an embedded S3, curate, and search."""
    # Before Prefect is imported: keep its database in the workdir (unless a server is
    # configured) and its console quiet, so the progress bar is what the user sees.
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str((workdir / "prefect").resolve()))
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from flows.demo import DEMO_QUERY, DemoLayout, demo_config, start_demo_services
    from storage.lance_store import LanceStore

    layout = DemoLayout(workdir)

    with console.status("synthesising samples and starting the embedded S3 server"):
        server, uploaded = start_demo_services(layout)
    try:
        console.print(
            f"S3 at {server.endpoint_url} (127.0.0.1 only); {uploaded} new object(s) uploaded"
        )
        config = demo_config(layout, server.endpoint_url)
        report = _run_with_progress(config)
    finally:
        server.stop()
    _print_report(report)
    if report["landed"] + report["quarantined"] + report["failed"] == 0:
        console.print("[bold]Nothing new:[/] every object is already curated at its current ETag.")
    store = LanceStore(config.lance_uri)
    rows = sorted(store.rows("clips"), key=lambda r: (r["key"], r["start_s"]))
    table = Table(title=f"clips in {layout.lance}")
    for col in ("source", "span (s)", "aesthetic", "caption"):
        table.add_column(col)
    for r in rows:
        words = " ".join(r["caption"].split()[:14])
        table.add_row(
            inert(r["source"]),
            f"{r['start_s']:.1f}-{r['end_s']:.1f}",
            f"{r['aesthetic_score']:.1f}",
            inert(words) + " ...",
        )
    console.print(table)
    hits = _search(DEMO_QUERY, 3, None, config)
    console.print(_hits_table(hits, f"search: {DEMO_QUERY!r}"))
    remember_table(config.lance_uri, "capflow demo")
    first = rows[0]["clip_id"] if rows else "CLIP_ID"
    console.print(
        "Next (this folder remembers the demo's table):\n"
        "  capflow search 'a bright scene with slow motion'\n"
        "  capflow status\n"
        f"  capflow show {first}\n"
        "  capflow serve                (a page to search and watch the clips)\n"
        "  capflow run --bucket BUCKET --endpoint-url URL   (your own bucket)",
        highlight=False,
    )


EndpointOpt = Annotated[str | None, typer.Option(help="S3 endpoint (MinIO, SeaweedFS)")]
WorkdirOpt = Annotated[Path | None, typer.Option(help="temp files, reports, cached results")]


def _connection(
    endpoint_url: str | None, lance_uri: str | None, workdir: Path | None
) -> dict[str, Any]:
    """Run-config overrides from the connection flags every run command shares."""
    overrides: dict[str, Any] = {}
    if endpoint_url:
        overrides["s3"] = {"endpoint_url": endpoint_url}
    if lance_uri:
        overrides["lance_uri"] = lance_uri
    if workdir:
        overrides["workdir"] = str(workdir.resolve())
    return overrides


def run_config(
    bucket: str | None = None,
    prefix: str | None = None,
    endpoint_url: str | None = None,
    lance_uri: str | None = None,
    config: Path | None = None,
    workdir: Path | None = None,
    reprocess: bool = False,
    where: str | None = None,
) -> Any:
    """The run config of `capflow run`: defaults < YAML < CAPFLOW_* < the flags given.
    A flag not given sets nothing, so it never hides what the file or environment says.
    `where` is the SOURCE argument: a folder, a file:// URL or s3://bucket/prefix."""
    from flows.config import build_config
    from storage.local import folder_of
    from storage.manifest import MANIFEST_SUFFIXES

    overrides = _connection(endpoint_url, lance_uri, workdir)
    source: dict[str, Any] = {}
    if where is not None:
        if bucket is not None:
            raise typer.BadParameter("give SOURCE or --bucket, not both", param_hint="SOURCE")
        if where.startswith("s3://"):
            bucket, _, in_bucket = where.removeprefix("s3://").partition("/")
            prefix = in_bucket if prefix is None else prefix
        elif where.lower().endswith(MANIFEST_SUFFIXES) and Path(where).is_file():
            source["manifest"] = str(Path(where).resolve())
        else:
            bucket = folder_of(where)
            if not Path(bucket).is_dir():
                raise typer.BadParameter(f"no folder {where}", param_hint="SOURCE")
    if bucket is not None:
        source["bucket"] = bucket
    if prefix is not None:
        source |= {"prefix": prefix, "prefixes": []}  # this prefix, not the file's list
    if source:
        overrides["source"] = source
    if reprocess:
        overrides["reprocess"] = True
    cfg = build_config(config, overrides)
    _STATE["endpoint_url"] = cfg.s3.endpoint_url
    if not cfg.source.bucket and not cfg.source.manifest:
        raise typer.BadParameter(
            "nothing to curate: give a folder or s3://bucket/prefix (SOURCE), --bucket, or "
            "set source.bucket in --config or CAPFLOW_SOURCE__BUCKET"
        )
    return cfg


@app.command()
def run(
    where: Annotated[
        str | None,
        typer.Argument(
            metavar="[SOURCE]",
            help="a folder of videos, file:///path, s3://bucket/prefix, or a .csv/.jsonl of URIs",
        ),
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="S3 bucket to curate (or source.bucket)")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="key prefix (or source.prefix)")] = None,
    endpoint_url: EndpointOpt = None,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
    workdir: WorkdirOpt = None,
    reprocess: Annotated[bool, typer.Option(help="redo objects already done")] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Prefect's log lines too")
    ] = False,
) -> None:
    """Curate a folder of videos, or a bucket on any S3 endpoint (standard AWS
    credential chain), once. A second run does only what is new or changed."""
    cfg = run_config(bucket, prefix, endpoint_url, lance_uri, config, workdir, reprocess, where)
    quiet_prefect_console(verbose)
    check_source(cfg)
    report = _run_with_progress(cfg)
    remember_table(cfg.lance_uri, "capflow run")
    _print_report(report)
    _exit_if_failed(report)


def check_source(cfg: Any) -> None:
    """One request before anything starts: a bucket that cannot be read (no credentials,
    an endpoint that is down, no such bucket) is one line now, not a failed flow run."""
    from dataclasses import replace

    from storage.local import is_local_bucket
    from storage.s3 import make_client

    if cfg.source.manifest:
        from storage.manifest import read_manifest

        if not read_manifest(Path(cfg.source.manifest)):
            raise typer.BadParameter(f"{cfg.source.manifest} lists no URI", param_hint="SOURCE")
        return
    if is_local_bucket(cfg.source.bucket):
        if not Path(cfg.source.bucket).is_dir():
            raise typer.BadParameter(f"no folder {cfg.source.bucket}", param_hint="source.bucket")
        return
    client = make_client(replace(cfg.s3.options(), max_attempts=2, connect_timeout_s=3.0))
    client.head_bucket(Bucket=cfg.source.bucket)


def _reading_config(config: Path | None, lance_uri: str | None) -> Any:
    """The run config of a command that reads the dataset, pointed at the table: the one
    the settings name, else the one the last run in this folder wrote (said on stderr)."""
    from flows.config import build_config
    from flows.dataset import DEFAULT_LANCE_URI, NoTable, find_table

    cfg = build_config(config, {"lance_uri": lance_uri} if lance_uri else {})
    explicit = lance_uri is not None or cfg.lance_uri != DEFAULT_LANCE_URI
    try:
        uri, found = find_table(cfg.lance_uri, explicit)
    except NoTable as e:
        notices.print(f"[red]error:[/] {inert(str(e))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    if found:
        notices.print(f"[dim]reading {inert(uri)}: {found}[/]", soft_wrap=True, highlight=False)
    return cfg.model_copy(update={"lance_uri": uri})


def _exit_if_failed(report: dict[str, Any]) -> None:
    """Failed objects are not done: say so last, with what to do, and exit 1."""
    if not report["failed"]:
        return
    causes = ", ".join(f"{n} x {c}" for c, n in sorted(report.get("failures", {}).items()))
    if report.get("stopped"):
        console.print(f"the run stopped early: {inert(report['stopped'])}")
    console.print(
        f"[red]{report['failed']} object(s) failed[/] ({inert(causes)}); they are not done: "
        "run the same command again to retry them",
        soft_wrap=True,
    )
    raise typer.Exit(1)


@app.command()
def backfill(
    bucket: Annotated[str, typer.Option(help="S3 bucket")],
    prefix: Annotated[
        list[str] | None, typer.Option("--prefix", help="key prefix (repeatable)")
    ] = None,
    since: Annotated[
        datetime | None, typer.Option(help="LastModified from (inclusive), e.g. 2026-01-01")
    ] = None,
    until: Annotated[datetime | None, typer.Option(help="LastModified until (exclusive)")] = None,
    partitions: Annotated[int, typer.Option(help="child flow runs", min=1)] = 4,
    concurrency: Annotated[int, typer.Option(help="children at a time", min=1)] = 2,
    endpoint_url: EndpointOpt = None,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
    workdir: WorkdirOpt = None,
    local: Annotated[
        bool, typer.Option("--local", help="run here even when PREFECT_API_URL is set")
    ] = False,
    wait: Annotated[bool, typer.Option(help="wait for a triggered deployment run")] = True,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="Prefect's log lines too")
    ] = False,
) -> None:
    """Curate old prefixes or a date range, one child run per partition; resumable.

    With PREFECT_API_URL set, triggers the `backfill` deployment (see `capflow deploy`);
    otherwise (or with --local) runs here.
    """
    if not prefix and since is None and until is None:
        raise typer.BadParameter("give --prefix (repeatable) or --since/--until")
    params: dict[str, Any] = {
        "bucket": bucket,
        "prefixes": prefix or None,
        "since": _utc(since),
        "until": _utc(until),
        "partitions": partitions,
        "concurrency": concurrency,
        "overrides": _connection(endpoint_url, lance_uri, workdir),
        "config_file": str(config.resolve()) if config else None,
    }
    quiet_prefect_console(verbose)
    if os.environ.get("PREFECT_API_URL") and not local:
        _trigger_backfill(params, wait)
        return
    from flows.backfill import BackfillFailed
    from flows.backfill import backfill as backfill_flow

    def run_backfill() -> dict[str, Any]:
        with console.status(f"backfill of s3://{inert(bucket)} in {partitions} partition(s)"):
            try:
                return dict(backfill_flow(**params))
            except BackfillFailed as e:
                console.print(f"[red]backfill incomplete:[/] {inert(str(e))}")
                raise typer.Exit(1) from e

    totals = _flow_command(run_backfill, log_dir=workdir.resolve() if workdir else None)
    from flows.config import build_config

    landed_in = build_config(config, _connection(endpoint_url, lance_uri, workdir)).lance_uri
    remember_table(landed_in, "capflow backfill")
    console.print(_totals_line(totals))


def _utc(moment: datetime | None) -> datetime | None:
    """Dates on the command line are UTC, like S3's LastModified."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _totals_line(totals: dict[str, Any]) -> str:
    return (
        f"objects seen {totals['seen']}: landed {totals['landed']}, quarantined "
        f"{totals['quarantined']}, skipped {totals['skipped']}, failed {totals['failed']}; "
        f"{totals['clips_landed']} clip(s) landed in {totals['partitions']} partition(s)"
    )


def _trigger_backfill(params: dict[str, Any], wait: bool) -> None:
    from prefect.deployments import run_deployment

    from flows.deployments import BACKFILL

    name = f"{BACKFILL}/{BACKFILL}"
    run = run_deployment(name, parameters=params, timeout=None if wait else 0, as_subflow=False)
    console.print(f"deployment {name}: flow run {run.id} ({run.name}) {run.state_name}")
    if wait and run.state is not None and not run.state.is_completed():
        raise typer.Exit(1)
    if wait:
        totals = backfill_totals(run.id)
        if totals is not None:
            console.print(_totals_line(totals))


def backfill_totals(flow_run_id: Any) -> dict[str, Any] | None:
    """The totals a finished backfill run left as its table artifact."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
    )

    from flows.backfill import TOTALS_ARTIFACT

    wanted = ArtifactFilter(
        flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
        key=ArtifactFilterKey(any_=[TOTALS_ARTIFACT]),
    )
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=wanted)
    for artifact in found:
        data = json.loads(artifact.data) if isinstance(artifact.data, str) else artifact.data
        if isinstance(data, list) and data:
            return dict(data[0])
    return None


@app.command()
def deploy(
    pool: Annotated[
        str, typer.Option(help="work pool (created as `process` if missing)")
    ] = DEFAULT_POOL,
    cron: Annotated[str, typer.Option(help="curate-incremental schedule")] = DEFAULT_CRON,
    timezone: Annotated[str, typer.Option(help="the schedule's time zone")] = "UTC",
    bucket: Annotated[str | None, typer.Option(help="bucket the schedule curates")] = None,
    prefix: Annotated[str | None, typer.Option(help="prefix the schedule curates")] = None,
    endpoint_url: EndpointOpt = None,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
    workdir: WorkdirOpt = None,
    code_dir: Annotated[
        str | None,
        typer.Option(help="where the worker has this code (the image: /opt/capflow/src)"),
    ] = None,
) -> None:
    """Register `curate-incremental` (cron) and `backfill` on PREFECT_API_URL's server."""
    from flows.deployments import DeploySpec, deploy_all

    if not os.environ.get("PREFECT_API_URL"):
        raise typer.BadParameter("set PREFECT_API_URL to the Prefect server to deploy to")
    overrides = _connection(endpoint_url, lance_uri, workdir)
    source = {k: v for k, v in (("bucket", bucket), ("prefix", prefix)) if v is not None}
    if source:
        overrides["source"] = source
    config_file = str(config.resolve()) if config else None
    spec = DeploySpec(pool, cron, timezone, overrides, config_file, code_dir)
    ids = deploy_all(spec)
    console.print(
        f"deployed curate-incremental ({inert(cron)} {timezone}) and backfill on pool "
        f"{inert(pool)}: {', '.join(ids)}\nstart a worker: prefect worker start --pool "
        f"{inert(pool)}"
    )


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("--k", help="number of results", min=1, max=10_000)] = 10,
    where: Annotated[str | None, typer.Option(help="filter, e.g. 'aesthetic_score > 5'")] = None,
    min_aesthetic: Annotated[float | None, typer.Option(help="aesthetic score at least")] = None,
    max_text_area: Annotated[
        float | None, typer.Option(help="share of the frame under text at most (0..1)")
    ] = None,
    min_motion: Annotated[float | None, typer.Option(help="motion score at least")] = None,
    include_duplicates: Annotated[
        bool, typer.Option(help="also clips marked duplicate_of another")
    ] = False,
    hybrid: Annotated[bool, typer.Option(help="fuse vector and full-text ranks (RRF)")] = False,
    image: Annotated[
        bool, typer.Option(help="match keyframe images through CLIP's text tower")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Clips ranked by similarity of their caption to TEXT."""
    from storage.search import filters_where

    cfg = _reading_config(config, lance_uri)
    combined = filters_where(where, min_aesthetic, max_text_area, min_motion)
    try:
        hits = _search(text, k, combined, cfg, hybrid, image, include_duplicates)
    except (ValueError, RuntimeError) as e:
        missing = re.search(r"No field named (\w+)", str(e))
        if not combined or not (missing or "SQL" in str(e) or "parse" in str(e).lower()):
            raise
        what = f"no column {missing.group(1)!r} in the clips table" if missing else "not SQL"
        raise typer.BadParameter(
            f"{what} (columns: see `capflow status --columns`)", param_hint="--where"
        ) from None
    if as_json:
        print(json.dumps([h.to_dict() for h in hits], indent=2))
    else:
        console.print(_hits_table(hits, f"search: {text!r}"))


CaptionerOpt = Annotated[
    str | None,
    typer.Option("--captioner", help="describe | hf:<model or path> | openai:<base_url>#<model>"),
]


def _caption_config(config: Path | None, captioner: str | None, **caption: Any) -> Any:
    from flows.config import build_config

    section = {k: v for k, v in caption.items() if v is not None}
    if captioner:
        section["captioner"] = captioner
    cfg = build_config(config, {"caption": section})
    if cfg.caption.captioner == "describe":
        notices.print(
            "[dim]captioner: describe (model-free, offline). Set a real model with "
            "--captioner hf:<model> or openai:<base_url>#<model> (caption.captioner).[/]",
            highlight=False,
        )
    return cfg


def _single(fn: Any, target: Any, cfg: Any, as_json: bool) -> dict[str, Any] | None:
    """Run a one-video command; print JSON (and return None) or return the result to show.
    A rejected video exits 2 with the stage and reason."""
    from flows.single import StageRejected

    try:
        result = fn(target, cfg)
    except StageRejected as e:
        console.print(f"[red]rejected[/] {inert(str(e))}")
        raise typer.Exit(2) from e
    if as_json:
        print(json.dumps(result, indent=2))
        return None
    return dict(result)


@app.command()
def caption(
    path: Annotated[Path, typer.Argument(help="a local video file", exists=True, dir_okay=False)],
    mode: Annotated[str | None, typer.Option(help="diffsw | fast (or caption.mode)")] = None,
    captioner: CaptionerOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Caption one video with DiffSW (or fast mode): keyframes, differential captions, summary."""
    import logging

    from flows.single import caption_video

    # One clip: a failed step is the command's error line, not a warning before it too.
    logging.getLogger("tasks.diffsw").setLevel(logging.ERROR)

    result = _single(caption_video, path, _caption_config(config, captioner, mode=mode), as_json)
    if result is None:
        return
    console.print(f"[bold]{inert(result['captioner'])}[/] ({result['mode']})")
    for d in result["differential_captions"]:
        console.print(f"  {d['t']:7.2f} s  {inert(d['text'])}")
    console.print(inert(result["caption"]))


@app.command()
def resummarize(
    clip_id: Annotated[str, typer.Argument(help="a landed clip's clip_id")],
    start: Annotated[float, typer.Option("--start", help="seconds")],
    end: Annotated[float, typer.Option("--end", help="seconds")],
    captioner: CaptionerOpt = None,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Re-summarise a time range of a clip from its stored differential captions."""
    from flows.rows import caption_version_row, steps_of
    from storage.lance_store import LanceStore
    from tasks.caption import CaptionerError
    from tasks.caption import resummarize as resummarize_steps

    cfg = _caption_config(config, captioner)
    if lance_uri:
        cfg = cfg.model_copy(update={"lance_uri": lance_uri})
    store = LanceStore(cfg.lance_uri, cfg.lance_storage_options())
    clip = store.clip(clip_id)
    if clip is None:
        console.print(f"[red]no clip {inert(clip_id)} in {inert(cfg.lance_uri)}[/]")
        raise typer.Exit(2)
    try:
        result = resummarize_steps(steps_of(clip), start, end, cfg.caption)
    except CaptionerError as e:
        console.print(f"[red]{inert(str(e))}[/]")
        raise typer.Exit(2) from e
    store.upsert_caption_versions([caption_version_row(clip, result, start, end, "cli")])
    console.print(inert(result.text))


@app.command()
def recaption(
    prompt: Annotated[str, typer.Argument(help="a short prompt to expand")],
    captioner: CaptionerOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Expand a short prompt into a detailed caption in the dataset's style."""
    from tasks.caption import CaptionerError
    from tasks.caption import recaption as expand

    cfg = _caption_config(config, captioner)
    try:
        result = expand(prompt, cfg.caption)
    except CaptionerError as e:
        console.print(f"[red]{inert(str(e))}[/]")
        raise typer.Exit(2) from e
    console.print(inert(result.text))


@app.command()
def detect(
    video: Annotated[str, typer.Argument(help="a local video file or s3://bucket/key")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    endpoint_url: Annotated[str | None, typer.Option(help="S3 endpoint for s3:// URLs")] = None,
    config: ConfigOpt = None,
) -> None:
    """Transitions (cuts and gradual) and shots of one video, with frame numbers and times."""
    from flows.config import build_config
    from flows.single import detect_video

    cfg = build_config(config, {"s3": {"endpoint_url": endpoint_url}} if endpoint_url else {})
    result = _single(detect_video, video, cfg, as_json)
    if result is None:
        return
    console.print(
        f"{inert(result['video'])}: {result['frame_count']} frames, {result['fps']:.3f} fps, "
        f"{result['duration_s']:.2f} s"
    )
    console.print(
        f"{len(result['shots'])} shot(s), {len(result['transitions'])} transition(s), in order:"
    )

    def extent(e: dict) -> str:
        frames = f"frames {e['start_frame']}-{e['end_frame']}"
        return f"{frames:<22} {e['start_s']:.2f}-{e['end_s']:.2f} s"

    # (first frame, a transition before the shot it starts, the line)
    lines = [
        (s["start_frame"], 1, f"  shot {n:<4} {extent(s)}")
        for n, s in enumerate(result["shots"], 1)
    ]
    lines += [
        (t["start_frame"], 0, f"    {t['type']:<7} {extent(t)}  score {t['score']:.3f}")
        for t in result["transitions"]
    ]
    for *_, line in sorted(lines):
        console.print(line)


@app.command()
def score(
    path: Annotated[Path, typer.Argument(help="a local video file", exists=True, dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Keyframes of a whole video with their aesthetic scores, and the clip's score."""
    from flows.config import build_config
    from flows.single import score_video

    result = _single(score_video, path, build_config(config), as_json)
    if result is None:
        return
    console.print(f"scorer {inert(result['scorer'])}: clip score {result['clip_score']:.2f}")
    for k in result["keyframes"]:
        console.print(f"  {k['t']:7.2f} s  {k['score']:.2f}")
    for name, value in result["scores"].items():
        shown = f"{value:.4f}" if isinstance(value, float) else inert(str(value))
        console.print(f"{name}: {shown}")
    for stage, verdict in result["verdicts"].items():
        console.print(f"{stage}: {inert(str(verdict))}")


s3_app = typer.Typer(help="The embedded S3 server (SeaweedFS) on its own, for your videos.")
app.add_typer(s3_app, name="s3")


def write_private(path: Path, text: str) -> None:
    """A file only its owner can read, written whole (the credentials)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


@s3_app.command("serve")
def s3_serve(
    data_dir: Annotated[Path, typer.Option("--dir", help="its data")] = Path("capflow-s3"),
    port: Annotated[int, typer.Option(help="the S3 port, on 127.0.0.1", min=1, max=65535)] = 8333,
) -> None:
    """Serve S3 on 127.0.0.1:PORT until Ctrl-C; endpoint and keys go to DIR/s3.env (0600)."""
    from storage.local_s3 import LocalS3Server

    server = LocalS3Server(data_dir.resolve(), s3_port=port)
    with console.status(f"starting SeaweedFS on 127.0.0.1:{port}"):
        server.start()
    env_file = data_dir.resolve() / "s3.env"
    creds = server.credentials
    write_private(
        env_file,
        f"export AWS_ACCESS_KEY_ID={creds.access_key_id}\n"
        f"export AWS_SECRET_ACCESS_KEY={creds.secret_access_key}\n"
        f"export CAPFLOW_S3__ENDPOINT_URL={server.endpoint_url}\n",
    )
    console.print(
        f"S3 at {server.endpoint_url} (127.0.0.1 only). Endpoint and credentials: "
        f"{inert(str(env_file))} (readable by you only). In another shell:\n"
        f"  source {inert(str(env_file))}\n"
        "  capflow s3 upload ./videos s3://videos/raw/\n"
        "  capflow run s3://videos/raw/\n"
        "Ctrl-C stops it; the data stays in the folder.",
        highlight=False,
        soft_wrap=True,
    )
    import time

    try:
        while server._proc is not None and server._proc.poll() is None:
            time.sleep(0.5)
        notices.print("[red]error:[/] the S3 server stopped; see its log in the data folder")
        raise typer.Exit(1)
    except (KeyboardInterrupt, Terminated):
        pass
    finally:
        server.stop()


@s3_app.command("upload")
def s3_upload(
    folder: Annotated[
        Path, typer.Argument(help="a folder of videos", exists=True, file_okay=False)
    ],
    target: Annotated[str, typer.Argument(help="s3://bucket/prefix")],
    endpoint_url: EndpointOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Upload a folder's videos under s3://bucket/prefix (keys: prefix + path inside)."""
    from flows.config import build_config
    from storage.s3 import ensure_bucket, is_video_key, make_client

    if not target.startswith("s3://") or not target.removeprefix("s3://").split("/")[0]:
        raise typer.BadParameter("expected s3://bucket/prefix", param_hint="TARGET")
    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    cfg = build_config(config, {"s3": {"endpoint_url": endpoint_url}} if endpoint_url else {})
    _STATE["endpoint_url"] = cfg.s3.endpoint_url
    client = make_client(cfg.s3.options())
    ensure_bucket(client, bucket)
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and is_video_key(p.name)
    )  # fmt: skip
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=console) as bar:  # fmt: skip
        task_id = bar.add_task("uploading", total=len(files))
        for path in files:
            client.upload_file(str(path), bucket, prefix + path.relative_to(folder).as_posix())
            bar.advance(task_id)
    console.print(f"{len(files)} video(s) under s3://{inert(bucket)}/{inert(prefix)}")


@app.command()
def export(
    format: Annotated[
        str, typer.Option("--format", help="webdataset | jsonl | csv | hf | parquet")
    ],
    out: Annotated[str, typer.Option("--out", help="a folder or s3://bucket/prefix")],
    where: Annotated[str | None, typer.Option(help="filter, as for search")] = None,
    min_aesthetic: Annotated[float | None, typer.Option(help="aesthetic score at least")] = None,
    max_text_area: Annotated[float | None, typer.Option(help="text share at most")] = None,
    min_motion: Annotated[float | None, typer.Option(help="motion score at least")] = None,
    shard_size: Annotated[str, typer.Option(help="bytes of video per shard")] = "500MB",
    with_embeddings: Annotated[bool, typer.Option(help="parquet: the vectors too")] = False,
    endpoint_url: EndpointOpt = None,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
    workdir: WorkdirOpt = None,
) -> None:
    """Write the clips an export at OUT lacks (incremental), as the format trainers read."""
    from flows.export import FORMATS, parse_size
    from storage.search import filters_where

    if format not in FORMATS:
        raise typer.BadParameter(f"one of {', '.join(FORMATS)}", param_hint="--format")
    parse_size(shard_size)
    cfg = _reading_config(config, lance_uri)
    overrides = _connection(endpoint_url, None, workdir) | {"lance_uri": cfg.lance_uri}
    _STATE["endpoint_url"] = endpoint_url or cfg.s3.endpoint_url
    combined = filters_where(where, min_aesthetic, max_text_area, min_motion)
    config_file = str(config.resolve()) if config else None
    quiet_prefect_console(False)

    def run_export() -> dict[str, Any]:
        from flows import progress
        from flows.export_flow import export_flow

        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      console=console) as bar:  # fmt: skip
            task_id = bar.add_task(f"exporting {format}", total=None)

            def on_event(event: str, detail: str) -> None:
                if event == "exported":
                    done, total = (int(x) for x in detail.split())
                    bar.update(task_id, completed=done, total=total)

            unsubscribe = progress.subscribe(on_event)
            try:
                return dict(export_flow(format, out, combined, shard_size, with_embeddings,
                                        overrides, config_file))  # fmt: skip
            finally:
                unsubscribe()

    report = _flow_command(run_export, log_dir=Path(cfg.workdir))
    console.print(
        f"exported {report['exported']} clip(s) in {len(report['shards'])} new shard(s) to "
        f"{inert(out)}; {report['already']} were there already; {report['cut_now']} cut now"
    )


@app.command()
def serve(
    lance_uri: LanceOpt = None,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port", min=1, max=65535)] = 8000,
    token: Annotated[
        str | None, typer.Option(help="required on any other address", envvar="CAPFLOW_SERVE_TOKEN")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """A page to search, filter and watch the dataset, and its JSON API (/openapi.json)."""
    import uvicorn

    from flows.web import check_bind, create_app

    try:
        check_bind(host, token)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--host") from None
    cfg = _reading_config(config, lance_uri)
    app_ = create_app(cfg, token)
    console.print(
        f"capflow at http://{host}:{port}/ reading {inert(cfg.lance_uri)}", highlight=False
    )
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    columns: Annotated[bool, typer.Option(help="also list the clips table's columns")] = False,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """What is in the dataset: objects by state, clips, quarantine by reason, last runs."""
    from flows.dataset import dataset_status
    from storage.lance_store import LanceStore

    cfg = _reading_config(config, lance_uri)
    result = dataset_status(LanceStore(cfg.lance_uri, cfg.lance_storage_options()))
    if not columns:
        result.pop("columns")
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    objects = ", ".join(f"{n} {state}" for state, n in result["objects"].items()) or "none"
    console.print(f"table {inert(result['lance_uri'])}")
    console.print(f"objects: {objects}")
    console.print(f"clips: {result['clips']} ({result['duplicates']} marked duplicate_of another)")
    for reason, n in result["quarantine"].items():
        console.print(f"  quarantined: {n} x {inert(reason)}")
    for r in result["runs"]:
        console.print(f"run {inert(r['run_id'])}: {r['objects']} object(s), {r['clips']} clip(s), "
                      f"last at {r['last']}")  # fmt: skip
    if columns:
        console.print("columns: " + ", ".join(result["columns"]))


@app.command()
def show(
    clip_id: Annotated[str, typer.Argument(help="a landed clip's clip_id")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    lance_uri: LanceOpt = None,
    config: ConfigOpt = None,
) -> None:
    """One clip: its record, its differential captions and its caption versions."""
    from flows.dataset import clip_record
    from storage.lance_store import LanceStore

    cfg = _reading_config(config, lance_uri)
    record = clip_record(LanceStore(cfg.lance_uri, cfg.lance_storage_options()), clip_id)
    if record is None:
        notices.print(f"[red]error:[/] no clip {inert(clip_id)} in {inert(cfg.lance_uri)}")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    console.print(f"[bold]{inert(record['clip_id'])}[/] {inert(record['source'])} "
                  f"{record['start_s']:.2f}-{record['end_s']:.2f} s")  # fmt: skip
    for name in ("aesthetic_score", "motion_score", "text_area", "duplicate_of", "caption_model"):
        if name in record:
            value = record[name]
            shown = f"{value:.4g}" if isinstance(value, float) else inert(str(value))
            console.print(f"  {name}: {shown}")
    for step in record["differential_captions"] or []:
        console.print(f"  {step['t']:7.2f} s  {inert(step['text'])}")
    console.print(inert(record["caption"]))
    for v in record["caption_versions"]:
        console.print(f"  version {inert(str(v['caption_model']))} {inert(str(v['caption_mode']))} "
                      f"at {v['created_at']}: {inert(v['caption'][:80])}")  # fmt: skip


def main() -> None:
    """The entry point: any error that reaches here is one line (flows/errors.py) unless
    --debug asks for the traceback."""
    import signal
    import sys

    apply_quiet_offline_defaults()
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        app()  # click itself prints bad options and arguments, and exits
    except SystemExit as e:
        if e.code in STOPPED_CODES:
            _leave_now(e.code)
        raise
    except Exception as e:
        if _STATE["debug"]:
            raise
        from flows.errors import one_line

        line, code = one_line(e, _STATE["endpoint_url"])
        notices.print(f"[red]error:[/] {line}", soft_wrap=True, highlight=False)
        sys.exit(code)


if __name__ == "__main__":
    main()
