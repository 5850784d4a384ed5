"""Prefect's share of a ~1,000-clip curate run: the flow vs. the same stream with no engine.

    python -m benchmarks.prefect_overhead [--clips 1000] [--workers 2] [--server URL]

One synthetic video (four 3.5 s shots of different lavfi sources, 320x240 H.264) is
uploaded under as many keys as it takes to reach --clips clips, to an embedded SeaweedFS.
Then, on fresh LanceDB folders, side by side in one process:

- `plain`: flows.streaming.StreamingRun with its two Prefect tasks (prepare-object,
  land-batch) swapped for their functions (`task.fn`) on a thread pool of the same size:
  the same stages, captioner, writes and ledger.
- `flow`: the curate flow (task runs, states, tag limits, the run artifact) on the
  Prefect API in use (--server, or the ephemeral one), caching off.
- `flow+cache`: the same with result caching on (prepared keyframes written to disk).

Overhead = (flow wall - plain wall) / flow wall. Data Docs are off in all three (they
are capflow's work, not Prefect's). Prints a table with /proc/loadavg and CPU seconds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import logging
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.scratch import scratch_dir
from flows.environment import apply_quiet_offline_defaults

apply_quiet_offline_defaults()
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

SHOTS = ["testsrc2", "mandelbrot", "life", "cellauto"]  # each moves by itself


def make_video(path: Path) -> Path:
    from tasks import media

    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error"]
    for src in SHOTS:
        argv += ["-f", "lavfi", "-t", "3.5", "-i", f"{src}=size=320x240:rate=25"]
    pads = "".join(f"[{i}:v]" for i in range(len(SHOTS)))
    # (A hue drift over the whole video, as this had before, reads as slow dissolves to
    # the gradual detector: issue #19's hue-shifting shot.)
    chain = f"{pads}concat=n={len(SHOTS)}:v=1:a=0,format=yuv420p[v]"
    argv += ["-filter_complex", chain, "-map", "[v]", "-c:v", "libx264", "-preset",
             "ultrafast", "-y", str(path)]  # fmt: skip
    assert media.run(argv, timeout_s=120).returncode == 0
    return path


class Plain:
    """A Prefect task's stand-in: its function, submitted to a plain thread pool."""

    def __init__(self, task: Any, pool: concurrent.futures.Executor) -> None:
        self.fn = task.fn
        self.pool = pool

    def with_options(self, **_: Any) -> Plain:
        return self

    def submit(self, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self.pool.submit(self.fn, *args, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from prefect.utilities.annotations import quote

        args = tuple(a.unquote() if isinstance(a, quote) else a for a in args)
        return self.fn(*args, **kwargs)


def run_plain(config: Any) -> dict[str, float]:
    """The flow's work (list, ledger, the stream, indexes) with no Prefect engine."""
    from flows.landing import LanceSink, land_batch_task
    from flows.prepare import prepare_object_task
    from flows.streaming import StreamingRun
    from storage.lance_store import IndexPolicy, LanceStore
    from storage.ledger import Ledger
    from storage.s3 import list_bucket, make_client
    from tasks.caption import load_captioner
    from tasks.embed import load_embedder

    started, cpu = time.perf_counter(), time.process_time()
    with concurrent.futures.ThreadPoolExecutor(config.max_workers) as pool:
        src = config.source
        client = make_client(config.s3.options())
        listed = list_bucket(client, src.bucket, src.all_prefixes()).selected
        store = LanceStore(config.lance_uri)
        todo, _ = Ledger(store).pending(listed)
        embed = config.embed
        stream = StreamingRun(
            config,
            "plain",
            Plain(prepare_object_task, pool),
            load_captioner(config.caption),
            load_embedder(embed.model, embed.device, embed.batch_size),
            [LanceSink(store)],
            config.clip_stages(),
            Plain(land_batch_task, pool),
        )
        result = stream.run(todo)
        clips = sum(o.clips_landed for o in result.outcomes)
        store.maintain_indexes(IndexPolicy(vector_index_min_rows=config.vector_index_min_rows))
    return {"wall": time.perf_counter() - started, "cpu": time.process_time() - cpu, "clips": clips}


def run_flow(config: Any) -> dict[str, float]:
    from flows.curate import run_curate

    started, cpu = time.perf_counter(), time.process_time()
    report = run_curate(config)
    wall = time.perf_counter() - started
    return {"wall": wall, "cpu": time.process_time() - cpu, "clips": report["clips_landed"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--server", help="PREFECT_API_URL of a running server")
    args = parser.parse_args()
    if args.server:  # before anything imports prefect, which reads its settings once
        os.environ["PREFECT_API_URL"] = args.server
    logging.getLogger("prefect").setLevel(logging.WARNING)

    from flows.config import build_config
    from flows.single import probe_and_analyse
    from storage.local_s3 import LocalS3Server
    from storage.s3 import S3Options, ensure_bucket, make_client
    from tasks.clips import cut_clips

    tmp = scratch_dir("capflow-overhead-")
    video = make_video(tmp / "four_shots.mp4")
    base = build_config(environ={})
    _, analysis = probe_and_analyse(video, base)
    per_video = len(cut_clips(analysis, base.clips))
    objects = -(-args.clips // per_video)
    print(f"{per_video} clips per video -> {objects} objects for {args.clips} clips")

    server = LocalS3Server(tmp / "s3").start()
    os.environ["AWS_ACCESS_KEY_ID"] = server.credentials.access_key_id
    os.environ["AWS_SECRET_ACCESS_KEY"] = server.credentials.secret_access_key
    try:
        client = make_client(S3Options(endpoint_url=server.endpoint_url))
        ensure_bucket(client, "bench")
        for i in range(objects):
            client.upload_file(str(video), "bench", f"raw/{i:05d}.mp4")

        def config(name: str, cache: bool) -> Any:
            return build_config(
                overrides={
                    "source": {"bucket": "bench", "prefix": "raw/"},
                    "s3": {"endpoint_url": server.endpoint_url},
                    "lance_uri": str(tmp / name / "lance"),
                    "workdir": str(tmp / name / "work"),
                    "max_workers": args.workers,
                    "cache": {"enabled": cache},
                    "quality": {"data_docs": False},
                },
                environ={},
            )

        # Warm-up: load MiniLM and the GX checkpoints, start the API, outside the timings.
        run_flow(config("warmup", False).model_copy(update={"source": base.source.model_copy(
            update={"bucket": "bench", "prefix": "raw/00000"})}))  # fmt: skip
        results = {
            "plain": run_plain(config("plain", False)),
            "flow": run_flow(config("flow", False)),
            "flow+cache": run_flow(config("flow-cache", True)),
        }
    finally:
        server.stop()

    plain = results["plain"]["wall"]
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"\nloadavg {load}, workers {args.workers}")
    print("| run | clips | wall s | CPU s (this process) | overhead vs plain |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        share = (r["wall"] - plain) / r["wall"] if name != "plain" else 0.0
        print(f"| {name} | {r['clips']} | {r['wall']:.1f} | {r['cpu']:.1f} | {share:+.1%} |")


if __name__ == "__main__":
    main()
