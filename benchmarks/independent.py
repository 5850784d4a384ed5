"""A second generator of labelled videos, for evaluation only: nothing here trains or tunes.

`benchmarks/synthetic.py` makes what the gradual network learns from; a detector scored
only on videos from the same generator scores its memory of it. This module shares no
source, event or transition implementation with it:
- sources: geq plasma, checkerboards, zooming rings and soft gradients (rendered small and
  scaled up), cloud textures panned over, yuvtestsrc, haldclutsrc, colorchart, mptestsrc,
  title cards, and a disc orbiting over a plasma;
- in-shot events that are not transitions, each implemented otherwise than in training:
  flashes and strobes as translucent fills of any colour, sustained light steps through
  `exposure` or a luma table, hue drift in radians, a vignette that breathes, noise
  bursts per component, box-blur focus pulls, tickers in a serif font, a textured panel
  crossing the frame, whip pans over a wide canvas;
- transitions: cuts, dissolves made with an alpha fade and `overlay` (not xfade), fades
  out to a colour and in from it with the `fade` filter, and xfade's wipes (straight and
  diagonal) and two crops;
- shots of 0.3-0.6 s between transitions, and jump cuts to a perturbed copy of a shot;
- 23.976-60 fps, 360p to 1080p and portrait, H.264, HEVC, VP9, MPEG-4 part 2, MJPEG.

Everything is counted in whole frames (shots trimmed by frame count), so each truth frame
is exact at 23.976 fps as at 25. Each video also lists its events, so a false transition
can be charged to what caused it.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from benchmarks.synthetic import Truth
from flows.samples import encode
from tests.helpers import count_frames

SERIF = Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf")
SOURCES = [
    "plasma", "checker", "rings", "softgradient", "clouds", "yuvtest", "hald", "chart",
    "mptest", "title", "orbit", "whippan",
]  # fmt: skip
EVENTS = [
    "fill_flash", "fill_strobe", "exposure_step", "luma_step", "hue_drift", "vignette",
    "noise_burst", "focus_pull", "ticker", "panel_crossing",
]  # fmt: skip
JOINS = [
    "cut", "cut", "cut", "overlay_dissolve", "overlay_dissolve", "fade_colour",
    "wipeleft", "wipedown", "wipetl", "wipebr", "rectcrop", "circlecrop",
]  # fmt: skip
RATES = [Fraction(24000, 1001), Fraction(25), Fraction(30000, 1001), Fraction(50), Fraction(60)]
SIZES = [(640, 360), (960, 540), (1280, 720), (360, 640), (854, 480), (1920, 1080)]
CODECS = {
    "h264": (["-c:v", "libx264", "-preset", "fast", "-crf", "23"], ".mp4"),
    "hevc": (["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"], ".mp4"),
    "vp9": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-crf", "36",
             "-b:v", "0"], ".webm"),
    "mpeg4": (["-c:v", "mpeg4", "-q:v", "5"], ".avi"),
    "mjpeg": (["-c:v", "mjpeg", "-q:v", "6"], ".mkv"),
}  # fmt: skip


@dataclass(frozen=True)
class Event:
    kind: str
    start: int  # first frame it touches
    end: int  # last frame


@dataclass(frozen=True)
class Labelled:
    path: Path
    truth: list[Truth]
    events: list[Event]
    joins: list[str]  # the join kind of each truth, in order


def _c(rng: random.Random) -> str:
    return f"0x{rng.randrange(1 << 24):06X}"


def source(kind: str, w: int, h: int, fps: Fraction, rng: random.Random) -> str:
    """One shot's picture, before events; `{i}` makes labels unique."""
    r = f"{fps.numerator}/{fps.denominator}"
    sw, sh = max(32, w // 8), max(32, h // 8)
    small = f"nullsrc=s={sw}x{sh}:r={r},format=yuv444p"
    up = f"scale={w}:{h}:flags=bicubic,format=yuv420p"
    k = [rng.uniform(0.5, 3.0) for _ in range(6)]
    if kind == "plasma":
        return (
            f"{small},geq=r='128+110*sin(X/{k[0] * 3:.1f}+T*{k[1]:.2f})':"
            f"g='128+110*sin(Y/{k[2] * 3:.1f}-T*{k[3]:.2f})':"
            f"b='128+110*sin((X+Y)/{k[4] * 4:.1f}+T*{k[5]:.2f})',{up}"
        )
    if kind == "checker":
        s, vx, vy = rng.randint(3, 8), rng.uniform(-8, 8), rng.uniform(-4, 4)
        return (
            f"{small},geq=lum='40+170*mod(floor((X+T*{vx:.1f})/{s})+floor((Y+T*{vy:.1f})/{s})\\,2)':"
            f"cb={rng.randint(60, 200)}:cr={rng.randint(60, 200)},{up}"
        )
    if kind == "rings":
        z = rng.choice([-1, 1]) * rng.uniform(0.05, 0.4)
        return (
            f"{small},geq=lum='128+120*cos(hypot(X-W/2\\,Y-H/2)*{k[0]:.2f}*(1+{z:.2f}*T))':"
            f"cb='128+60*sin(T*{k[1]:.2f})':cr='128+60*cos(X/9)',{up}"
        )
    if kind == "softgradient":  # a still or barely moving gradient (sky, a wall)
        return (
            f"{small},geq=r='{rng.randint(0, 255)}*X/W+{rng.randint(0, 80)}':"
            f"g='{rng.randint(0, 255)}*Y/H+{rng.randint(0, 80)}':"
            f"b='{rng.randint(60, 200)}+30*sin(T*{k[0] / 4:.2f})',{up}"
        )
    if kind == "clouds":  # a textured sky, panned over
        v = rng.choice([-1, 1]) * rng.uniform(0.02, 0.15) * w
        return (
            f"color=c={_c(rng)}:s={w // 2}x{h // 4}:r={r},noise=alls=90:allf=0,"
            f"gblur=sigma={rng.uniform(3, 8):.1f},scale={w * 2}:{h},"
            f"crop={w}:{h}:x='{w / 2:.0f}+{w / 2 - 2:.0f}*sin(t*{v / w:.3f})':y=0,format=yuv420p"
        )
    if kind == "yuvtest":
        return f"yuvtestsrc=s={w}x{h}:r={r},scroll=h={rng.uniform(-0.01, 0.01):.4f},format=yuv420p"
    if kind == "hald":
        return (
            f"haldclutsrc=level={rng.choice([6, 8])}:rate={r},scale={w * 5 // 4}:{h * 5 // 4},"
            f"crop={w}:{h}:x='{w // 8}+{w // 8}*sin(t*{k[0]:.2f})':y='{h // 8}',format=yuv420p"
        )
    if kind == "chart":
        return (
            f"colorchart=rate={r}:preset={rng.choice(['reference', 'skintones'])},"
            f"scale={w * 3 // 2}:{h * 3 // 2},crop={w}:{h}:x='t*{rng.uniform(2, 30):.1f}':y={h // 4},"
            "format=yuv420p"
        )
    if kind == "mptest":
        return (
            f"mptestsrc=t={rng.choice(['ring1', 'ring2', 'mv', 'freq_luma', 'amp_chroma'])}:"
            f"rate={r},scale={w}:{h},format=yuv420p"
        )
    if kind == "title":
        font = f"fontfile={SERIF}:" if SERIF.exists() else ""
        words = rng.choice(["Chapter One", "The Harbour", "Ten Years Later", "Interview"])
        return (
            f"color=c={_c(rng)}:s={w}x{h}:r={r},drawtext={font}text='{words}':"
            f"fontsize={h // 8}:fontcolor={_c(rng)}:x=(w-tw)/2:y=(h-th)/2+{h // 20}*sin(t),"
            "format=yuv420p"
        )
    if kind == "orbit":  # a disc circling over a plasma
        d = max(8, int(h * rng.uniform(0.15, 0.35)))
        return (
            f"{small},geq=r='90+60*sin(X/7+T)':g='90+60*sin(Y/5)':b='120',{up}[bg{{i}}];"
            f"nullsrc=s={d}x{d}:r={r},format=yuva444p,geq=lum={rng.randint(150, 250)}:"
            f"cb={rng.randint(0, 255)}:cr={rng.randint(0, 255)}:"
            f"a='255*lt(hypot(X-W/2\\,Y-H/2)\\,W/2)'[disc{{i}}];"
            f"[bg{{i}}][disc{{i}}]overlay=x='{w / 2 - d / 2:.0f}+{w / 3:.0f}*cos(t*{k[0]:.2f})':"
            f"y='{h / 2 - d / 2:.0f}+{h / 3:.0f}*sin(t*{k[0]:.2f})':shortest=1,format=yuv420p"
        )
    # whippan: a wide canvas, still, then a fast swing (0.2-0.5 s), then still
    at, swing = rng.uniform(0.3, 1.5), rng.uniform(0.2, 0.5)
    return (
        f"nullsrc=s={sw * 3}x{sh}:r={r},format=yuv444p,"
        f"geq=r='128+100*sin(X/{k[0] * 4:.1f})':g='128+100*cos(X/{k[1] * 5:.1f}+Y/6)':b='X*255/W',"
        f"scale={w * 3}:{h},crop={w}:{h}:x='{w * 2}*clip((t-{at:.2f})/{swing:.2f}\\,0\\,1)':y=0,"
        "format=yuv420p"
    )


def event(kind: str, w: int, h: int, fps: Fraction, secs: float, rng: random.Random):
    """(filter chain to append, start s, end s) of one in-shot event."""
    a = rng.uniform(0.15, max(0.2, secs - 0.5))
    d = rng.choice([float(1 / fps), float(2 / fps), 0.15, 0.3, 0.5, 0.8])
    win = f"between(t\\,{a:.3f}\\,{a + d:.3f})"
    r = f"{fps.numerator}/{fps.denominator}"
    if kind == "fill_flash":
        alpha = rng.uniform(0.3, 0.9)
        return f",drawbox=c={_c(rng)}@{alpha:.2f}:t=fill:enable='{win}'", a, a + d
    if kind == "fill_strobe":
        span, period = rng.uniform(0.5, min(2.5, secs - a)), rng.uniform(0.05, 0.35)
        cond = f"between(t\\,{a:.3f}\\,{a + span:.3f})*lt(mod(t\\,{period:.3f})\\,{period / 3:.3f})"
        colour = rng.choice(["white", "white", _c(rng)])
        return (
            f",drawbox=c={colour}@{rng.uniform(0.4, 0.9):.2f}:t=fill:enable='{cond}'",
            a,
            a + span,
        )
    if kind == "exposure_step":
        stops = rng.choice([-1, 1]) * rng.uniform(0.4, 1.2)
        return f",exposure=exposure={stops:.2f}:enable='gte(t\\,{a:.3f})'", a, secs
    if kind == "luma_step":
        gain = rng.choice([rng.uniform(0.6, 0.85), rng.uniform(1.15, 1.5)])
        return f",lutyuv=y='clip(val*{gain:.2f}\\,16\\,235)':enable='gte(t\\,{a:.3f})'", a, secs
    if kind == "hue_drift":
        return f",hue=H='{rng.uniform(0.3, 2.0):.2f}*max(0\\,t-{a:.3f})'", a, secs
    if kind == "vignette":
        return f",vignette=angle='PI/5+PI/7*sin(t*{rng.uniform(2, 6):.1f})':eval=frame", 0.0, secs
    if kind == "noise_burst":
        return (
            f",noise=c0s={rng.randint(30, 90)}:c0f=t:c1s={rng.randint(0, 40)}:c1f=t:enable='{win}'",
            a,
            a + d,
        )
    if kind == "focus_pull":
        lr = rng.randint(3, max(4, h // 40))
        out = f",boxblur=lr={lr}:lp={rng.randint(1, 3)}:enable='between(t\\,{a:.3f}\\,{a + d + 0.3:.3f})'"
        return out, a, a + d + 0.3
    if kind == "ticker":
        font = f"fontfile={SERIF}:" if SERIF.exists() else ""
        size = rng.randint(h // 14, h // 6)
        return (
            f",drawtext={font}text='BREAKING  markets rise  weather ahead':fontsize={size}:"
            f"fontcolor={_c(rng)}:box=1:boxcolor={_c(rng)}@0.7:"
            f"x='w-mod((t-{a:.3f})*{rng.uniform(0.3, 1.2) * w:.0f}\\,w+tw)':y=h-{size * 3 // 2}:"
            f"enable='gte(t\\,{a:.3f})'",
            a,
            secs,
        )
    # panel_crossing: a textured panel (a person, a car) passes in front of the camera
    pw, ph = int(w * rng.uniform(0.25, 0.8)), int(h * rng.uniform(0.5, 1.0))
    dur = rng.uniform(0.25, 1.6)
    tag = f"{{i}}_{rng.randrange(1 << 30)}"
    x = f"-{pw}+{w + pw}*(t-{a:.3f})/{dur:.3f}"
    if rng.random() < 0.5:
        x = f"{w}-({x})-{pw}"
    return (
        f"[pre{tag}];yuvtestsrc=s={pw}x{ph}:r={r},hue=h={rng.randrange(360)},"
        f"boxblur=2[panel{tag}];[pre{tag}][panel{tag}]overlay=x='{x}':y={h - ph}:shortest=1:"
        f"enable='between(t\\,{a:.3f}\\,{a + dur:.3f})'",
        a,
        a + dur,
    )


def independent_video(folder: Path, name: str, rng: random.Random) -> Labelled:
    """One video of 4-9 shots; its truth, events and the join kind of each truth."""
    w, h = rng.choice(SIZES)
    if (w, h) == (1920, 1080) and rng.random() < 0.5:
        w, h = 1280, 720  # 1080p is slow to make; keep a few
    fps = rng.choice(RATES)
    codec = rng.choice(list(CODECS))
    args, ext = CODECS[codec]
    path = folder / f"{name}{ext}"
    n = rng.randint(4, 9)
    frames = []
    for _ in range(n):
        secs = rng.uniform(0.3, 0.6) if rng.random() < 0.12 else rng.uniform(2.0, 6.0)
        frames.append(max(8, round(secs * fps)))
    parts, events, kinds = [], [], []
    tb = f"1/{fps.numerator * 10}"  # every frame time exact at this rate
    rate = f"{fps.numerator}/{fps.denominator}"
    local_events: list[list[tuple[str, float, float]]] = []
    state = rng.getstate()
    for i, nf in enumerate(frames):
        secs = nf / fps
        if i and rng.random() < 0.12:  # a jump cut to a perturbed copy of the last shot
            again = random.Random()
            again.setstate(state)
            kinds.append(kinds[-1])
            chain = source(kinds[-1], w, h, fps, again) + rng.choice(
                [
                    ",hflip",
                    f",eq=gamma={rng.uniform(0.7, 1.4):.2f}",
                    f",crop=iw*0.92:ih*0.92:iw*0.04:ih*0.04,scale={w}:{h}",
                ]
            )
        else:
            state = rng.getstate()
            kinds.append(rng.choice(SOURCES))
            chain = source(kinds[-1], w, h, fps, rng)
        mine = []
        if secs >= 1.5:
            for _ in range(rng.choice([0, 1, 1, 2])):
                ek = rng.choice(EVENTS)
                add, a, b = event(ek, w, h, fps, float(secs), rng)
                chain += add
                mine.append((ek, a, b))
        local_events.append(mine)
        parts.append(
            chain.format(i=i)
            + f",setsar=1,trim=end_frame={nf},setpts=PTS-STARTPTS,settb={tb}[s{i}]"
        )
    graph = ";".join(parts)
    label, total, truth, joins, starts = "s0", frames[0], [], [], [0]
    settled = 0
    for i in range(1, n):
        join = rng.choice(JOINS)
        dur = round(rng.uniform(0.4, 1.8) * fps)
        dur = min(dur, frames[i] - round(0.3 * fps), total - settled - round(0.3 * fps))
        if join == "cut" or dur < round(0.3 * fps):
            graph += f";[{label}][s{i}]concat=n=2:v=1:a=0,settb={tb}[j{i}]"
            found, kind, start = Truth("cut", total, total), "cut", total
            settled, total = total, total + frames[i]
        elif join == "fade_colour":
            colour = rng.choice(["black", "black", "white", _c(rng)])
            out, into = max(2, dur // 2), max(2, dur - dur // 2)
            graph += (
                f";[{label}]fade=t=out:s={total - out}:n={out}:c={colour}[o{i}];"
                f"[s{i}]fade=t=in:s=0:n={into}:c={colour}[n{i}];"
                f"[o{i}][n{i}]concat=n=2:v=1:a=0,settb={tb}[j{i}]"
            )
            found, kind, start = Truth("gradual", total - out, total + into - 1), "fade", total
            settled, total = total + into, total + frames[i]
        else:  # the shots overlap for `dur` frames: a dissolve or a wipe
            off = total - dur
            if join == "overlay_dissolve":
                graph += (
                    f";[s{i}]format=yuva420p,fade=t=in:st=0:d={float(dur / fps):.4f}:alpha=1,"
                    f"setpts=PTS-STARTPTS+{float(off / fps):.5f}/TB[f{i}];"
                    # The outgoing picture runs on under the incoming shot, which is
                    # opaque once faded in: a filler does (tpad after xfade adds nothing
                    # in ffmpeg 5.1, and the video came out short).
                    f"color=c=black:s={w}x{h}:r={rate},trim=end_frame={frames[i] - dur},"
                    f"setsar=1,settb={tb}[pad{i}];"
                    f"[{label}][pad{i}]concat=n=2:v=1:a=0,settb={tb}[p{i}];"
                    f"[p{i}][f{i}]overlay=eof_action=pass:shortest=0,format=yuv420p,"
                    f"settb={tb}[j{i}]"
                )
            else:
                graph += (
                    f";[{label}][s{i}]xfade=transition={join}:duration={float(dur / fps):.5f}:"
                    f"offset={float(off / fps):.5f},settb={tb}[j{i}]"
                )
            kind = "dissolve" if join == "overlay_dissolve" else "wipe"
            found, start = Truth("gradual", off, total - 1), off
            settled, total = total, off + frames[i]
        truth.append(found)
        joins.append(kind)
        starts.append(start)
        label = f"j{i}"
    for i, mine in enumerate(local_events):
        for ek, a, b in mine:
            events.append(Event(ek, starts[i] + round(a * fps), starts[i] + round(b * fps)))
    graph += f";[{label}]format=yuv420p[v]"  # no fps filter: it drops the last frame
    encode(graph, path, float(total / fps), [*args, "-r", rate], timeout_s=900)
    made = count_frames(path)  # decoded as the detector decodes it
    if made != total:  # the labels would be wrong: a generator bug, not a redraw
        raise ValueError(f"{path.name}: {made} frames made, {total} labelled")
    return Labelled(path, truth, events, joins)


def independent_set(folder: Path, seed: int, count: int) -> list[Labelled]:
    """`count` videos from one seed, made once: a folder that has them is read back."""
    labels = folder / f"labels-{seed}-{count}.json"
    if labels.exists():
        return [
            Labelled(
                folder / v["path"],
                [Truth(**t) for t in v["truth"]],
                [Event(**e) for e in v["events"]],
                v["joins"],
            )
            for v in json.loads(labels.read_text())
        ]
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    made = []
    while len(made) < count:
        try:
            made.append(independent_video(folder, f"x{len(made):02d}", rng))
        except RuntimeError as e:  # Debian's ffmpeg 5.1 crashes on a rare draw: draw again
            print(f"  redrawing x{len(made):02d}: {str(e)[:120]}", flush=True)
            for partial in folder.glob(f"x{len(made):02d}.*"):  # the crashed draw's output
                partial.unlink()
    rows = [
        {
            "path": v.path.name,
            "truth": [asdict(t) for t in v.truth],
            "events": [asdict(e) for e in v.events],
            "joins": v.joins,
        }
        for v in made
    ]
    labels.write_text(json.dumps(rows))
    return made
