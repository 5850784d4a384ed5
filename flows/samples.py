"""Synthesise sample videos with ffmpeg: the demo's input and the tests' fixtures.

Each sample is built from lavfi test sources joined by hard cuts (concat) or dissolves
(xfade), so the true shot boundaries are known by construction. One sample is a dull,
flat shot meant to fail the aesthetic filter, and one is random bytes with a video name.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tasks import media

SIZE = "320x180"
RATE = 25


def _moving_box(bg: str, box: str, size: str, x: str, y: str) -> str:
    """A coloured background with a box moving along (x(t), y(t)); {i} is the shot's label."""
    return (
        f"color=c={bg}:s={SIZE}:r={{rate}}[bg{{i}}];color=c={box}:s={size}:r={{rate}}[fg{{i}}];"
        f"[bg{{i}}][fg{{i}}]overlay=x='{x}':y='{y}':shortest=1"
    )


# Shot name -> lavfi graph ending in one video output; "{i}" keeps labels unique and
# "{rate}" is the frame rate.
SHOTS: dict[str, str] = {
    "night_sea": _moving_box("0x0b1640", "0x6f8fe8", "80x60", "mod(t*100\\,290)", "70"),
    "test_pattern": f"testsrc2=s={SIZE}:r={{rate}}",
    "sunset": _moving_box("0xd2601e", "0xffd23c", "40x40", "140", "120-t*8"),
    "meadow": _moving_box("0x2e7d32", "0x9ccc65", "60x30", "250-t*25", "100"),
    "fractal": f"mandelbrot=s={SIZE}:r={{rate}}",
    "colour_bars": f"smptehdbars=s={SIZE}:r={{rate}}",
    "fog": f"color=c=0x7f7f7f:s={SIZE}:r={{rate}},noise=alls=6:allf=t:all_seed=7,gblur=sigma=8",
}


@dataclass(frozen=True)
class Sample:
    """A synthesised video and the shot spans (seconds) it was built from."""

    name: str
    path: Path
    shots: list[tuple[float, float]]
    transitions: list[str]


FAST_H264 = ("-c:v", "libx264", "-preset", "ultrafast")


def encode(
    graph: str, out: Path, seconds: float, codec: Sequence[str] = FAST_H264, timeout_s: float = 120
) -> None:
    """Render a lavfi filter graph ending in [v] to `out` (the benchmarks' videos too)."""
    argv = [media.ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "error"]
    argv += ["-filter_complex", graph, "-map", "[v]", "-t", f"{seconds}", *codec]
    argv += ["-pix_fmt", "yuv420p", "-y", str(out)]
    result = media.run(argv, timeout_s=timeout_s)
    if result.returncode != 0:
        raise RuntimeError(f"could not synthesise {out.name}: {result.stderr[-500:]}")


def make_video(
    out: Path, shots: list[tuple[str, float]], joins: list[str], rate: int = RATE
) -> Sample:
    """Join shots (name, seconds) with `cut` or `<transition>:<seconds>` joins, where the
    transition is `dissolve` or any of ffmpeg's xfade transitions (fadeblack, wipeleft...)."""
    parts = [
        SHOTS[name].format(i=i, rate=rate) + f",trim=duration={d},setpts=PTS-STARTPTS[s{i}]"
        for i, (name, d) in enumerate(shots)
    ]
    graph = ";".join(parts)
    label, length, spans, kinds = "s0", shots[0][1], [(0.0, shots[0][1])], []
    for i, join in enumerate(joins, start=1):
        d = shots[i][1]
        if join == "cut":
            graph += f";[{label}][s{i}]concat=n=2:v=1:a=0[j{i}]"
            spans.append((length, length + d))
            length += d
            kinds.append("cut")
        else:
            kind, _, seconds = join.partition(":")
            fade, name = float(seconds), "fade" if kind == "dissolve" else kind
            offset = length - fade
            graph += (
                f";[{label}][s{i}]xfade=transition={name}:duration={fade}:offset={offset}[j{i}]"
            )
            spans[-1] = (spans[-1][0], offset)
            spans.append((length, offset + d))
            length = offset + d
            kinds.append("gradual")
        label = f"j{i}"
    graph += f";[{label}]null[v]"
    encode(graph, out, length)
    return Sample(out.stem, out, spans, kinds)


def synthesize_samples(out_dir: Path) -> list[Sample]:
    """The demo set: three multi-shot videos, one dull shot, one non-video with a video name."""
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = [
        make_video(out_dir / "night_harbour.mp4", [("night_sea", 5), ("test_pattern", 5)], ["cut"]),
        make_video(out_dir / "sunset_meadow.mp4", [("sunset", 5), ("meadow", 5)], ["dissolve:1"]),
        make_video(
            out_dir / "fractal_bars.mp4",
            [("fractal", 4), ("colour_bars", 4), ("test_pattern", 4)],
            ["cut", "cut"],
        ),
        make_video(out_dir / "grey_fog.mp4", [("fog", 4)], []),
    ]
    broken = out_dir / "not_a_video.mp4"
    broken.write_bytes(random.Random(0).randbytes(4096))  # noqa: S311 - same bytes each time
    samples.append(Sample(broken.stem, broken, [], []))
    return samples
