"""Labelled synthetic videos made with ffmpeg: the truth is known by construction.

Two catalogues, one encoder path:
- `benchmark_video`: the transition benchmark's set (six shot kinds: moving box, pan,
  moving test pattern, fractal zoom, colour bars, a shot with a brightness flash; joined
  by cuts, dissolves, fades through black or white and wipes of 0.5-2 s). Its random
  draws are unchanged since the first benchmark, so a seed gives the same videos.
- `training_video`: what the gradual-transition network learns from. Wider on purpose,
  so that the benchmark measures more than memory of it: 23 shot kinds (the benchmark's
  six at other settings, plus gradients still and panned, cellular automata, fractals,
  zooms, rotations, handheld shake, whip pans, exposure drift, grain), 21 kinds of gradual
  transition (ffmpeg's xfade catalogue but slides, and fade-out, black, fade-in),
  0.3-2.5 s, 12-60 fps, landscape and portrait, H.264 and MPEG-4 at several qualities.
  Six shots in ten carry in-shot events that are not transitions (`TRAIN_EVENTS`:
  flashes and strobes of one frame to most of a second, in any colour; objects crossing
  the frame; light and contrast steps; hue and grade drifts; noise bursts; focus pulls;
  scrolling text). One shot in eight is 0.25-0.6 s long, and one in eight is a perturbed
  copy of the shot before it (a jump cut the detector must still find).

`benchmarks/independent.py` is a third generator that shares none of this, for evaluation.

A gradual transition's truth is the range of frames that mix both shots: xfade from
`offset` for `duration` seconds covers frames round(offset*fps) .. round((offset+d)*fps)-1.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flows.samples import encode


@dataclass(frozen=True)
class Truth:
    kind: str  # cut | gradual
    start: int
    end: int


Maker = Callable[[Path, random.Random], list[Truth]]


def _colour(rng: random.Random) -> str:
    return f"0x{rng.randrange(1 << 24):06x}"


# --- the benchmark's catalogue --------------------------------------------------------

BENCH_SHOTS = ["box", "pan", "pattern", "zoom", "bars", "flash"]
BENCH_JOINS = ["cut", "cut", "fade", "fadeblack", "fadewhite", "wipeleft", "dissolve"]


def benchmark_shot(kind: str, size: str, fps: int, rng: random.Random) -> str:
    w, h = (int(x) for x in size.split("x"))
    c1, c2 = _colour(rng), _colour(rng)
    if kind == "box":
        speed = rng.choice([40, 120, 300])
        return (
            f"color=c={c1}:s={size}:r={fps}[b{{i}}];color=c={c2}:s={w // 6}x{h // 4}:r={fps}[f{{i}}];"
            f"[b{{i}}][f{{i}}]overlay=x='{w * 5 // 6}*abs(sin(t*{speed / w:.3f}))':"
            f"y='{h // 3}+20*sin(t*3)':shortest=1"
        )
    if kind == "pan":
        # A pan that never wraps round (a wrap would be a real jump in the picture).
        speed = rng.choice([w // 12, w // 6])
        return f"testsrc2=s={w * 2}x{h}:r={fps},crop={w}:{h}:x='min(t*{speed}\\,{w})':y=0"
    if kind == "pattern":
        return f"testsrc2=s={size}:r={fps},hue=h={rng.randrange(360)}"
    if kind == "zoom":
        return f"mandelbrot=s={size}:r={fps}:start_scale={rng.uniform(1, 3):.2f}"
    if kind == "bars":
        return f"smptehdbars=s={size}:r={fps},hue=h={rng.randrange(360)}"
    # A shot with a brightness flash in the middle: not a transition.
    at = rng.uniform(1.0, 2.0)
    return (
        f"testsrc2=s={size}:r={fps},hue=h={rng.randrange(360)},"
        f"eq=brightness='if(between(t\\,{at:.2f}\\,{at + 0.08:.2f})\\,0.7\\,0)':eval=frame"
    )


def benchmark_video(path: Path, rng: random.Random) -> list[Truth]:
    size = rng.choice(["320x180", "640x360", "480x270"])
    fps = rng.choice([24, 25, 30])
    codec = rng.choice(["libx264", "mpeg4"])
    n = rng.randint(3, 5)
    lengths = [round(rng.uniform(3.0, 6.0), 2) for _ in range(n)]
    kinds = [rng.choice(BENCH_SHOTS) for _ in range(n)]
    parts = [
        benchmark_shot(k, size, fps, rng).format(i=i)
        + f",trim=duration={d},setpts=PTS-STARTPTS,settb=1/{fps}[s{i}]"
        for i, (k, d) in enumerate(zip(kinds, lengths, strict=True))
    ]
    graph = ";".join(parts)
    label, length, truth = "s0", lengths[0], []
    for i in range(1, n):
        join = rng.choice(BENCH_JOINS)
        if join == "cut":
            graph += f";[{label}][s{i}]concat=n=2:v=1:a=0,settb=1/{fps}[j{i}]"
            frame = round(length * fps)
            truth.append(Truth("cut", frame, frame))
            length += lengths[i]
        else:
            dur = round(rng.uniform(0.5, 2.0), 2)
            name = "fade" if join == "dissolve" else join
            offset = length - dur
            graph += (
                f";[{label}][s{i}]xfade=transition={name}:duration={dur}:offset={offset:.3f}[j{i}]"
            )
            truth.append(Truth("gradual", round(offset * fps), round((offset + dur) * fps) - 1))
            length = offset + lengths[i]
        label = f"j{i}"
    graph += f";[{label}]null[v]"
    quality = ["-preset", "veryfast"] if codec == "libx264" else ["-q:v", "4"]
    encode(graph, path, length, ["-c:v", codec, *quality], timeout_s=600)
    return truth


# --- the training catalogue -----------------------------------------------------------

TRAIN_SHOTS = [
    "testsrc2pan", "mandel", "smpte", "testsrc2", "box", "gradients", "life", "cellauto",
    "sierpinski", "testsrc", "chartpan", "blobs", "zoom", "rotate", "shake", "flash",
    "exposure", "whip", "noise", "rgbpan", "spectrum", "stillgradient", "gradientpan",
]  # fmt: skip
TRAIN_GRADUAL = [
    "fade",
    "fade",
    "dissolve",
    "fadeblack",
    "fadewhite",
    "fadegrays",
    "wipeleft",
    "wiperight",
    "wipeup",
    "wipedown",
    "smoothleft",
    "smoothright",
    "circleopen",
    "circleclose",
    "radial",
    "diagtl",
    "diagbr",
    "hblur",
    "distance",
    "vertopen",
    "horzclose",
    "fadehold",
]  # fmt: skip; no slides: a slide is a fast pan over two pictures, and a pan is no edit


def training_shot(kind: str, w: int, h: int, fps: int, rng: random.Random, secs: float) -> str:
    """One shot's lavfi graph; `{i}` keeps labels unique where the graph has several."""
    s = f"{w}x{h}"
    hue = f"hue=h={rng.randrange(360)}"
    if kind == "testsrc2pan":  # a camera panning, or tilting, then perhaps stopping
        speed = rng.choice([0.05, 0.08, 0.17, 0.25, 0.5, 0.8])
        stop = rng.choice([1.0, 0.5, 2.0])
        if rng.random() < 0.25:  # a tilt
            span, pos = h * stop, f"min(t*{h * speed:.0f}\\,{h * stop:.0f})"
            y = pos if rng.random() < 0.5 else f"{span:.0f}-{pos}"
            return f"testsrc2=s={w}x{h * 3}:r={fps},{hue},crop={w}:{h}:x=0:y='{y}'"
        span, pos = w * stop, f"min(t*{w * speed:.0f}\\,{w * stop:.0f})"
        x = pos if rng.random() < 0.5 else f"{span:.0f}-{pos}"
        return f"testsrc2=s={w * 3}x{h}:r={fps},{hue},crop={w}:{h}:x='{x}':y=0"
    if kind == "mandel":
        inner = rng.choice(["black", "convergence", "mincol", "period"])
        return (
            f"mandelbrot=s={s}:r={fps}:start_scale={rng.uniform(0.5, 4):.2f}:"
            f"end_scale={rng.uniform(0.05, 0.5):.2f}:inner={inner}"
        )
    if kind == "smpte":
        return f"{rng.choice(['smptehdbars', 'smptebars', 'pal100bars'])}=s={s}:r={fps},{hue}"
    if kind == "testsrc2":
        return f"testsrc2=s={s}:r={fps},{hue}:s={rng.uniform(0.5, 2):.2f}"
    if kind == "box":
        speed = rng.choice([20, 40, 120, 300, 600])
        bw, bh = rng.randint(w // 10, w // 3), rng.randint(h // 8, h // 2)
        return (
            f"color=c={_colour(rng)}:s={s}:r={fps}[b{{i}}];"
            f"color=c={_colour(rng)}:s={bw}x{bh}:r={fps}[f{{i}}];"
            f"[b{{i}}][f{{i}}]overlay=x='{w - bw}*abs(sin(t*{speed / w:.3f}))':"
            f"y='{rng.randint(0, h - bh)}+{rng.randint(0, 30)}*sin(t*{rng.uniform(1, 5):.1f})'"
            ":shortest=1"
        )
    if kind == "gradients":
        return (
            f"gradients=s={s}:r={fps}:c0={_colour(rng)}:c1={_colour(rng)}:c2={_colour(rng)}:"
            f"nb_colors=3:speed={rng.uniform(0.005, 0.05):.3f}:seed={rng.randrange(1000)},"
            f"noise=alls={rng.randrange(0, 12)}:allf=t"
        )
    if kind == "life":
        return (
            f"life=s={w // 4}x{h // 4}:r={fps}:ratio={rng.uniform(0.05, 0.3):.2f}:mold=10:"
            f"life_color={_colour(rng)}:death_color={_colour(rng)}:mold_color={_colour(rng)}:"
            f"seed={rng.randrange(1000)},scale={w}:{h}:flags=bilinear"
        )
    if kind == "cellauto":
        return (
            f"cellauto=s={w // 2}x{h // 2}:r={fps}:rule={rng.choice([18, 30, 90, 110, 150])}:"
            f"random_fill_ratio={rng.uniform(0.2, 0.7):.2f}:scroll=1:seed={rng.randrange(1000)},"
            f"scale={w}:{h},format=yuv420p,{hue}:s=3"
        )
    if kind == "sierpinski":
        shape = rng.choice(["carpet", "triangle"])
        return f"sierpinski=s={s}:r={fps}:type={shape}:jump={rng.randrange(1, 6)},{hue}:s=2"
    if kind == "testsrc":
        return f"testsrc=s={s}:r={fps},{hue}"
    if kind == "chartpan":  # a wandering camera over colour bars
        sp = rng.choice([0.3, 0.6, 1.0])
        return (
            f"pal75bars=s={w * 2}x{h * 2}:r={fps},{hue},crop={w}:{h}:"
            f"x='{w / 2:.0f}+{w / 2 - 1:.0f}*sin(t*{sp:.2f})':"
            f"y='{h / 2:.0f}+{h / 2 - 1:.0f}*sin(t*{sp * 0.7:.2f})'"
        )
    if kind == "blobs":  # things crossing the frame, entering and leaving it
        graph = f"color=c={_colour(rng)}:s={s}:r={fps}"
        for _ in range(rng.randint(1, 4)):
            bw, bh = rng.randint(w // 10, w // 3), rng.randint(h // 10, h // 3)
            vx, vy = rng.uniform(-1, 1) * w / 3, rng.uniform(-1, 1) * h / 3
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            graph += (
                f",drawbox=x='mod({x0:.0f}+t*{vx:.0f}+{w},{w + bw})-{bw}':"
                f"y='mod({y0:.0f}+t*{vy:.0f}+{h},{h + bh})-{bh}':"
                f"w={bw}:h={bh}:color={_colour(rng)}:t=fill"
            )
        return graph + ",gblur=sigma=1.5"
    if kind == "zoom":  # a camera zooming in or out
        z = rng.uniform(0.001, 0.006)
        src = rng.choice(["testsrc", "rgbtestsrc", "smptebars"])
        zoom = rng.choice([f"min(1+{z}*on,3)", f"max(2.5-{z}*on,1)"])
        return (
            f"{src}=s={s}:r={fps},zoompan=z='{zoom}':d=1:x='iw/2-(iw/zoom/2)':"
            f"y='ih/2-(ih/zoom/2)':s={s}:fps={fps},{hue}"
        )
    if kind == "rotate":
        return (
            f"testsrc=s={s}:r={fps},rotate=a='t*{rng.uniform(0.1, 0.6):.2f}':c={_colour(rng)},{hue}"
        )
    if kind == "shake":  # a handheld camera
        a = rng.uniform(2, 10)
        return (
            f"rgbtestsrc=s={w + 40}x{h + 40}:r={fps},{hue},"
            f"crop={w}:{h}:x='20+{a:.1f}*sin(t*13)+{a / 2:.1f}*sin(t*29)':y='20+{a:.1f}*sin(t*17)'"
        )
    if kind == "flash":  # flashes inside a shot: not transitions
        base = rng.choice(["testsrc", "gradients", "smptebars"])
        src = f"{base}=s={s}:r={fps}" + (":speed=0.02" if base == "gradients" else "")
        starts = sorted(rng.uniform(0.5, secs - 0.3) for _ in range(rng.randint(1, 3)))
        spans = [(a, a + rng.choice([0.04, 0.08, 0.12])) for a in starts]
        cond = "+".join(f"between(t\\,{a:.2f}\\,{b:.2f})" for a, b in spans)
        level = rng.uniform(0.3, 0.8)
        return f"{src},{hue},eq=brightness='if({cond}\\,{level:.2f}\\,0)':eval=frame"
    if kind == "exposure":  # a mild exposure drift: not a transition
        amp, speed = rng.uniform(0.05, 0.15), rng.uniform(0.8, 2)
        return (
            f"testsrc=s={s}:r={fps},{hue},eq=brightness='{amp:.2f}*sin(t*{speed:.2f})':eval=frame"
        )
    if kind == "whip":  # a fast pan over a wide pattern
        at = rng.uniform(0.5, max(0.6, secs - 1))
        return (
            f"rgbtestsrc=s={w * 3}x{h}:r={fps},{hue},"
            f"crop={w}:{h}:x='{w}*clip((t-{at:.2f})/0.4\\,0\\,1)*1.5':y=0"
        )
    if kind == "noise":  # grain over a still scene
        return (
            f"color=c={_colour(rng)}:s={s}:r={fps},noise=alls={rng.randrange(10, 40)}:allf=t+u,"
            f"drawgrid=w={w // 8}:h={h // 6}:t=2:c={_colour(rng)}"
        )
    if kind == "rgbpan":
        speed = rng.choice([w // 12, w // 6, w // 3, w // 2])
        return f"testsrc=s={w * 3}x{h}:r={fps},{hue},crop={w}:{h}:x='min(t*{speed}\\,{w * 2})':y=0"
    if kind == "stillgradient":  # a clear sky, a plain wall: all change is the codec's
        return (
            f"gradients=s={s}:r={fps}:c0={_colour(rng)}:c1={_colour(rng)}:nb_colors=2:"
            f"speed=0.0001:seed={rng.randrange(1000)}"
        )
    if kind == "gradientpan":  # a camera panning over a smooth gradient
        speed = rng.uniform(0.05, 0.4) * w
        return (
            f"gradients=s={w * 3}x{h}:r={fps}:c0={_colour(rng)}:c1={_colour(rng)}:"
            f"c2={_colour(rng)}:nb_colors=3:speed=0.0001:seed={rng.randrange(1000)},"
            f"crop={w}:{h}:x='min(t*{speed:.0f}\\,{w * 2})':y=0"
        )
    spectrum = rng.choice(["black", "white", "all"])  # "spectrum": hues cycling
    return f"colorspectrum=s={s}:r={fps}:type={spectrum},hue=h='t*{rng.uniform(5, 40):.0f}'"


# --- events inside a shot that are not transitions (training) ---------------------------

TRAIN_EVENTS = [
    "flash", "colourflash", "strobe", "crossing", "lightstep", "contraststep", "huedrift",
    "gradedrift", "noiseburst", "defocus", "scrolltext",
]  # fmt: skip
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
WORDS = [
    "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dogs", "while", "seven", "red",
    "ships", "sail", "north",
]  # fmt: skip


def training_event(kind: str, w: int, h: int, fps: int, rng: random.Random, secs: float) -> str:
    """A filter chain (",..." to append to a shot) that changes the picture inside the
    shot without ending it: what the detector must not call a transition. Lengths run
    from one frame to most of a second, so no single flash length is learnt."""
    a = rng.uniform(0.2, max(0.3, secs - 0.4))
    d = rng.choice([1 / fps, 2 / fps, 3 / fps, 0.1, 0.2, 0.35, 0.6])
    on = f"between(t\\,{a:.3f}\\,{a + d:.3f})"
    if kind == "flash":  # brighter or darker for a moment
        level = rng.choice([-1, 1, 1]) * rng.uniform(0.2, 0.8)
        return f",eq=brightness='if({on}\\,{level:.2f}\\,0)':eval=frame"
    if kind == "colourflash":  # a coloured light: explosions, police lights, a lamp
        r, g, b = (rng.uniform(-1, 1) for _ in range(3))
        return (
            f",colorbalance=rs={r:.2f}:gs={g:.2f}:bs={b:.2f}:rm={r:.2f}:gm={g:.2f}:bm={b:.2f}"
            f":rh={r:.2f}:gh={g:.2f}:bh={b:.2f}:enable='{on}'"
        )
    if kind == "strobe":
        period = rng.uniform(2 / fps, 0.3)
        span = rng.uniform(0.4, min(2.0, secs))
        level = rng.uniform(0.3, 0.8)
        cond = f"between(t\\,{a:.3f}\\,{a + span:.3f})*lt(mod(t-{a:.3f}\\,{period:.3f})\\,{period / 2:.3f})"
        return f",eq=brightness='if({cond}\\,{level:.2f}\\,0)':eval=frame"
    if kind == "crossing":  # something big passes in front of the camera
        bw, bh = int(w * rng.uniform(0.3, 0.9)), int(h * rng.uniform(0.4, 1.0))
        dur = rng.uniform(0.3, 2.0)
        y = rng.randint(0, h - bh)
        x = f"-{bw}+{w + bw}*(t-{a:.3f})/{dur:.3f}"
        if rng.random() < 0.5:
            x = f"{w}-{bw}-({x})"
        edge = "" if rng.random() < 0.5 else ",gblur=sigma=2"
        tag = f"{{i}}_{rng.randrange(1 << 30)}"  # drawbox has no time: an overlay moves
        return (
            f"[pre{tag}];color=c={_colour(rng)}:s={bw}x{bh}:r={fps}{edge}[obj{tag}];"
            f"[pre{tag}][obj{tag}]overlay=x='{x}':y={y}:shortest=1:"
            f"enable='between(t\\,{a:.3f}\\,{a + dur:.3f})'"
        )
    if kind == "lightstep":  # a light switched on or off, and it stays
        level = rng.choice([-1, 1]) * rng.uniform(0.08, 0.35)
        ramp = rng.choice([0.001, 1 / fps, 0.2, 0.6])
        return f",eq=brightness='{level:.2f}*clip((t-{a:.3f})/{ramp:.3f}\\,0\\,1)':eval=frame"
    if kind == "contraststep":
        c = rng.uniform(0.5, 1.6)
        return f",eq=contrast='if(gte(t\\,{a:.3f})\\,{c:.2f}\\,1)':saturation='if(gte(t\\,{a:.3f})\\,{rng.uniform(0.3, 1.8):.2f}\\,1)':eval=frame"
    if kind == "huedrift":  # a colour grade that changes while the shot goes on
        speed = rng.choice([-1, 1]) * rng.uniform(10, 120)
        return f",hue=h='{speed:.0f}*max(0\\,t-{a:.3f})':s='1+{rng.uniform(0, 0.6):.2f}*sin(t)'"
    if kind == "gradedrift":
        s1, s2 = rng.uniform(0.5, 3), rng.uniform(0.5, 3)
        return (
            f",eq=gamma_r='1+{rng.uniform(0, 0.5):.2f}*sin(t*{s1:.2f})':"
            f"gamma_b='1+{rng.uniform(0, 0.5):.2f}*sin(t*{s2:.2f})':"
            f"saturation='1+{rng.uniform(0, 0.8):.2f}*sin(t*{s2:.2f})':eval=frame"
        )
    if kind == "noiseburst":
        return f",noise=alls={rng.randrange(20, 80)}:allf=t:enable='between(t\\,{a:.3f}\\,{a + d + 0.2:.3f})'"
    if kind == "defocus":  # a rack focus: blur grows, then clears
        steps, out = rng.randint(2, 4), ""
        for k in range(steps):
            t0, t1 = a + k * 0.06, a + d + 0.4 - k * 0.06
            out += f",gblur=sigma={1 + 1.5 * k:.1f}:enable='between(t\\,{t0:.3f}\\,{t1:.3f})'"
        return out
    # scrolltext: credits or a ticker over the picture
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
    size = rng.randint(h // 12, h // 5)
    pos = (
        f"x=(w-tw)/2:y='h-(t-{a:.3f})*{rng.uniform(0.2, 1.0) * h:.0f}'"
        if rng.random() < 0.5
        else f"x='w-(t-{a:.3f})*{rng.uniform(0.3, 1.5) * w:.0f}':y={rng.randint(0, h - size)}"
    )
    font = f"fontfile={FONT}:" if FONT.exists() else ""
    return f",drawtext={font}text='{text}':fontsize={size}:fontcolor={_colour(rng)}:{pos}"


def with_events(chain: str, w: int, h: int, fps: int, rng: random.Random, secs: float) -> str:
    """The shot with none, one or two in-shot events (six shots in ten get some)."""
    for _ in range(rng.choice([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])):
        chain += training_event(rng.choice(TRAIN_EVENTS), w, h, fps, rng, secs)
    return chain


def training_video(path: Path, rng: random.Random) -> list[Truth]:
    sizes = [(256, 144), (320, 180), (426, 240), (480, 270), (640, 360), (360, 640), (854, 480)]
    w, h = rng.choice([*sizes, (400, 300)])
    fps = rng.choice([12, 15, 24, 25, 30, 30, 50, 60])
    codec = rng.choice(["libx264", "libx264", "mpeg4"])
    n = rng.randint(2, 6)
    lengths = [
        round(rng.uniform(2.5, 6.0) if rng.random() > 0.12 else rng.uniform(0.25, 0.6), 2)
        for _ in range(n)
    ]
    kinds = [rng.choice(TRAIN_SHOTS) for _ in range(n)]
    parts, state = [], rng.getstate()
    for i, (k, d) in enumerate(zip(kinds, lengths, strict=True)):
        if i and rng.random() < 0.12:  # the same scene again, a little changed: a jump cut
            again = random.Random()
            again.setstate(state)
            k = kinds[i] = kinds[i - 1]
            shot = training_shot(k, w, h, fps, again, d) + rng.choice(
                [
                    f",hue=h={rng.randint(10, 40)}",
                    f",eq=brightness={rng.choice([-1, 1]) * rng.uniform(0.04, 0.12):.2f}",
                    f",crop=iw*{rng.uniform(0.7, 0.9):.2f}:ih*{rng.uniform(0.7, 0.9):.2f},"
                    f"scale={w}:{h}",
                    "",
                ]
            )
        else:
            state = rng.getstate()
            shot = training_shot(k, w, h, fps, rng, d)
        if d >= 1.0:
            shot = with_events(shot, w, h, fps, rng, d)
        parts.append(
            shot.format(i=i)
            + f",format=yuv420p,setsar=1,trim=duration={d},setpts=PTS-STARTPTS,settb=1/{fps}[s{i}]"
        )
    graph = ";".join(parts)
    label, length, truth = "s0", lengths[0], []
    settled = 0.0  # where the last transition ended: the next may not start before it
    for i in range(1, n):
        join = rng.choice(["cut", "cut", *TRAIN_GRADUAL])
        dur = round(rng.uniform(0.3, 2.5), 2)
        dur = round(min(dur, lengths[i] - 0.5, length - settled - 0.4), 2)
        if join == "cut" or dur < 0.3:
            graph += f";[{label}][s{i}]concat=n=2:v=1:a=0,settb=1/{fps}[j{i}]"
            truth.append(Truth("cut", round(length * fps), round(length * fps)))
            settled = length
            length += lengths[i]
        elif join == "fadehold":  # fade out to black, hold black, fade in
            out = min(rng.uniform(0.3, 1.0), length - settled - 0.4)
            fade_in = min(rng.uniform(0.3, 1.0), lengths[i] - 0.2)
            held = max(1, round(rng.uniform(0.0, 0.5) * fps))
            black = f"color=c=black:s={w}x{h}:r={fps},format=yuv420p,trim=end_frame={held},"
            graph += (
                f";[{label}]fade=t=out:st={length - out:.3f}:d={out:.3f}[fa{i}];"
                f"{black}setpts=PTS-STARTPTS,settb=1/{fps}[bk{i}];"
                f"[s{i}]fade=t=in:st=0:d={fade_in:.3f}[fb{i}];"
                f"[fa{i}][bk{i}][fb{i}]concat=n=3:v=1:a=0,settb=1/{fps}[j{i}]"
            )
            end = round(length * fps) + held + round(fade_in * fps) - 1
            truth.append(Truth("gradual", round((length - out) * fps), end))
            settled = length + held / fps + fade_in
            length += held / fps + lengths[i]
        else:
            offset = length - dur
            graph += (
                f";[{label}][s{i}]xfade=transition={join}:duration={dur}:offset={offset:.3f}[j{i}]"
            )
            truth.append(Truth("gradual", round(offset * fps), round((offset + dur) * fps) - 1))
            settled = length
            length = offset + lengths[i]
        label = f"j{i}"
    graph += f";[{label}]null[v]"
    if codec == "libx264":
        preset = rng.choice(["veryfast", "fast", "medium"])
        quality = ["-preset", preset, "-crf", str(rng.randint(18, 32))]
    else:
        quality = ["-q:v", str(rng.randint(2, 8))]
    encode(graph, path, length, ["-c:v", codec, *quality], timeout_s=600)
    return truth


def labelled_set(
    folder: Path, seed: int, count: int, make: Maker
) -> list[tuple[Path, list[Truth]]]:
    """`count` videos from one seed, made one after another from the same random stream."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    return [(folder / f"v{i:02d}.mp4", make(folder / f"v{i:02d}.mp4", rng)) for i in range(count)]
