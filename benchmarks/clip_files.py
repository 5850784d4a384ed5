"""Clip files: capflow's cutter against a plain per-clip `ffmpeg -ss/-to` re-encode of
the same spans, in one run.

    python -m benchmarks.clip_files [--seconds 120] [--clip-s 4] [--seed 31]

The source is drawn fresh each run (lavfi mandelbrot and testsrc2 shots in a random
order and length from `--seed`, 1280x720 at 29.97 fps, H.264 with B-frames and open
GOPs); spans are its frames cut every `--clip-s` seconds with a random jitter, each on
exact frame times from the pipeline's decode pass. Both cutters re-encode with the same
libx264 settings (CRF 20, veryfast, yuv420p, AAC); capflow cuts 16 spans per process, one
input seek each, with and without its WebP preview; the baseline runs one ffmpeg per
span with input `-ss START -to END`. Reported: clip-seconds per CPU-second (children's
user+sys), wall seconds, and how many clips hold exactly their span's frame count.
"""

from __future__ import annotations

import argparse
import random
import resource
import tempfile
import time
from pathlib import Path

from tasks import media
from tasks.clip_files import ClipCut, MediaConfig, cut_clip_files

X264 = ["-c:v", "libx264", "-crf", "20", "-preset", "veryfast", "-pix_fmt", "yuv420p"]


def make_source(out: Path, seconds: float, seed: int) -> Path:
    rng = random.Random(seed)
    shots, total, graph = [], 0.0, []
    while total < seconds:
        d = min(rng.uniform(3, 12), seconds - total)
        src = rng.choice(["mandelbrot=s=1280x720:r=30000/1001",
                          "testsrc2=s=1280x720:r=30000/1001"])  # fmt: skip
        graph.append(f"{src},trim=duration={d:.3f},setpts=PTS-STARTPTS[s{len(shots)}]")
        shots.append(d)
        total += d
    joined = "".join(f"[s{i}]" for i in range(len(shots)))
    graph.append(f"{joined}concat=n={len(shots)}:v=1:a=0[v]")
    argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-filter_complex", ";".join(graph),
            "-f", "lavfi", "-i", f"sine=f=330:r=48000:d={seconds}", "-map", "[v]", "-map", "0:a",
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "60", "-x264-params",
            "open-gop=1", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", "-y", str(out)]  # fmt: skip
    assert media.run(argv, timeout_s=1200).returncode == 0
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def frames_in(path: Path) -> int:
    argv = [media.ffprobe_path() or "ffprobe", "-v", "error", "-count_frames",
            "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames",
            "-of", "csv=p=0", str(path)]  # fmt: skip
    return int(media.run(argv, timeout_s=120).stdout.decode().strip() or 0)


def baseline(src: Path, cuts: list[ClipCut], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for cut in cuts:
        argv = [media.ffmpeg_path(), "-nostdin", "-v", "error", "-ss", f"{cut.start_s:.6f}",
                "-to", f"{cut.start_s + cut.duration_s:.6f}", "-i", str(src), *X264,
                "-c:a", "aac", "-y", str(out / f"{cut.clip_id}.mp4")]  # fmt: skip
        assert media.run(argv, timeout_s=600).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--clip-s", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = make_source(tmp / "src.mp4", args.seconds, args.seed)
        times = [f.t for f in media.stream_frames(src, 32, 18, timeout_s=1200)]
        fps = (len(times) - 1) / (times[-1] - times[0])
        rng = random.Random(args.seed + 1)
        cuts, i = [], 0
        step = round(args.clip_s * fps)
        while i + step < len(times):
            n = max(2, step + rng.randint(-10, 10))
            if i + n >= len(times):
                break
            cuts.append(ClipCut(f"c{len(cuts):04d}", times[i], n, times[i + n] - times[i]))
            i += n
        clip_s = sum(c.duration_s for c in cuts)
        print(f"source {args.seconds:.0f} s 1280x720 29.97 fps seed {args.seed}: "
              f"{len(cuts)} clips, {clip_s:.0f} clip-seconds")  # fmt: skip
        runs = {
            "per-clip ffmpeg -ss/-to": lambda out: baseline(src, cuts, out),
            "capflow, 16 per process": lambda out: cut_clip_files(
                src, cuts, out, MediaConfig(uri="x", previews=False), fps=fps),
            "capflow + WebP previews": lambda out: cut_clip_files(
                src, cuts, out, MediaConfig(uri="x"), fps=fps),
        }  # fmt: skip
        for name, run in runs.items():
            out = tmp / name.replace(" ", "_").replace("/", "_")
            cpu, wall = children_cpu(), time.perf_counter()
            run(out)
            cpu, wall = children_cpu() - cpu, time.perf_counter() - wall
            exact = sum(frames_in(out / f"{c.clip_id}.mp4") == c.num_frames for c in cuts)
            print(f"{name:26s} {clip_s / cpu:6.2f} clip-s per CPU-s  wall {wall:6.1f} s  "
                  f"exact frame count {exact}/{len(cuts)}")  # fmt: skip


if __name__ == "__main__":
    main()
