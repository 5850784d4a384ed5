"""Train the gradual-transition network (`tasks/gradual.py`) on labelled synthetic videos.

    .venv/bin/python -m benchmarks.train_gradual [--work DIR] [--train-seeds 500-621]
        [--val-seeds 100-119] [--epochs 12] [--out tasks/models/gradual_tcn.npz]

1. Makes the training videos (`benchmarks.synthetic.training_video`, 8 per seed) and the
   validation videos (`benchmark_video`, 16 per seed: the benchmark's generator, seeds
   the benchmark does not report), in parallel, once; they stay in --work.
2. Decodes each through the pipeline's own `FrameMeter` (48x27 frames, the features the
   pipeline computes), keeping its measurements beside the video under a name that
   changes with the decode settings, so a changed decode is measured again.
3. Trains the network with torch, then decides each validation video exactly as the
   pipeline does (`find_transitions`) and prints the F1 scores.
4. Writes the weights where `tasks.gradual.TCN.load` reads them.

Labels: a network frame is positive inside a gradual transition's true range. Cuts are
the hand-written detector's job; the network's second output learns them too, because
knowing where cuts are helps it tell a cut's echo from a transition.
Run by hand (about 40 minutes on 2 cores, most of it making and decoding videos).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchmarks.synthetic import Maker, Truth, benchmark_video, labelled_set, training_video
from benchmarks.transitions import score
from storage.types import ProbeInfo
from tasks import gradual, media
from tasks.probe import ProbeConfig, probe_video
from tasks.transitions import (
    ROWS_PER_ROW,
    CutEvidence,
    Measurements,
    TransitionConfig,
    find_cuts,
    find_transitions,
    measure_video,
    network_starts,
)

if TYPE_CHECKING:
    import torch  # imported where used: only training needs it

CONFIG = TransitionConfig()
MEASURES = 11  # what FrameMeter keeps per frame: raise it when that or how it is measured changes
DILATIONS = (2, 4, 8, 16)
HIDDEN = 32
DROPOUT = 0.1  # these three from a small sweep on the validation sets: the network
WEIGHT_DECAY = 0.05  # overfits the training catalogue quickly, and these held it back


def seeds(spec: str) -> list[int]:
    """'500-505,600' -> [500, ..., 505, 600]."""
    out: list[int] = []
    for part in spec.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def make_set(folder: Path, seed: int, count: int, make: Maker) -> Path:
    """One seed's videos and truth.json, unless they are there already."""
    truth_file = folder / "truth.json"
    if not truth_file.exists():
        truths = [ts for _, ts in labelled_set(folder, seed, count, make)]
        truth_file.write_text(json.dumps([[asdict(t) for t in ts] for ts in truths]))
    return folder


def measurement_key() -> str:
    """What the measurements depend on: the decode's arguments, frame size, the features
    and the settings that change what is measured (not those that only decide)."""
    decode = media.input_args(Path("video"), fast=CONFIG.fast_decode)[:-2]
    measured = [
        CONFIG.cut_floor,
        CONFIG.cut_threshold,
        CONFIG.cut_isolation,  # faint changes get evidence only when isolated
        CONFIG.flash_s,
        CONFIG.long_flash_relit,  # motion relit is measured for jumps relit this far ...
        CONFIG.cut_relit,  # ... and less than this
        gradual.N_FEATURES,
        MEASURES,
        ROWS_PER_ROW,
    ]
    spec = json.dumps([decode, gradual.FRAME_SIZE, measured], sort_keys=True)
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def measure(video: Path) -> Path:
    """The pipeline's measurements of one video, saved beside it."""
    out = video.with_suffix(f".measured-{measurement_key()}.npz")
    if out.exists():
        return out
    probe = probe_video(video, ProbeConfig())
    assert isinstance(probe, ProbeInfo), probe
    m = measure_video(video, probe, CONFIG)
    assert isinstance(m, Measurements), m
    np.savez(
        out,
        fps=m.fps,
        stride=m.stride,
        times=np.asarray(m.times),
        change=np.asarray(m.change),
        broad=np.asarray(m.broad),
        evidence=np.asarray([(i, *e) for i, e in sorted(m.evidence.items())]).reshape(
            -1, 1 + len(CutEvidence._fields)
        ),
        features=m.features,
        profiles=m.profiles,
        pictures=m.pictures,
    )
    return out


def load_measurements(path: Path) -> Measurements:
    z = np.load(path)
    evidence = {int(row[0]): CutEvidence(*map(float, row[1:])) for row in z["evidence"]}
    n = len(z["times"])
    return Measurements(
        float(z["fps"]),
        int(z["stride"]),
        z["times"].tolist(),
        z["change"].tolist(),
        z["broad"].tolist(),
        [(0.0, 0.0)] * n,
        evidence,
        z["features"],
        z["profiles"],
        z["pictures"],
    )


def load_set(folder: Path, pool: ProcessPoolExecutor) -> list[dict]:
    """Each video of a set with its measurements, network input, labels and truth."""
    truths = [[Truth(**t) for t in ts] for ts in json.loads((folder / "truth.json").read_text())]
    videos = [folder / f"v{i:02d}.mp4" for i in range(len(truths))]
    items = []
    for path, truth in zip(pool.map(measure, videos), truths, strict=True):
        m = load_measurements(path)
        cuts = find_cuts(m, CONFIG)
        n = len(m.features)
        cut_label, gradual_label = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for t in truth:
            first = -(-t.start // m.stride)
            if t.kind == "cut" and first < n:
                cut_label[first] = 1.0
            elif t.kind == "gradual":
                gradual_label[first : t.end // m.stride + 1] = 1.0
        x = gradual.network_input(m.features, network_starts(cuts, m.stride))
        items.append(dict(m=m, x=x, cut=cut_label, gradual=gradual_label, truth=truth))
    return items


def build_network(channels: int) -> torch.nn.Module:
    import torch

    class Network(torch.nn.Module):
        """The torch twin of tasks.gradual.TCN (same layers, same order)."""

        def __init__(self) -> None:
            super().__init__()
            self.dropout = torch.nn.Dropout(DROPOUT)
            self.layers = torch.nn.ModuleList(
                [torch.nn.Conv1d(channels, HIDDEN, 5, padding=2)]
                + [torch.nn.Conv1d(HIDDEN, HIDDEN, 3, padding=d, dilation=d) for d in DILATIONS]
            )
            self.head = torch.nn.Conv1d(HIDDEN, 2, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for i, layer in enumerate(self.layers):
                y = self.dropout(torch.relu(layer(x)))
                x = y if i == 0 else x + y
            return self.head(x)[0]

    return Network()


def train(items: list[dict], epochs: int, seed: int) -> torch.nn.Module:
    import torch

    torch.manual_seed(seed)
    order = np.random.default_rng(seed)
    net = build_network(items[0]["x"].shape[0])
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    tensors = [
        (torch.tensor(it["x"][None]), torch.tensor(it["cut"]), torch.tensor(it["gradual"]))
        for it in items
    ]
    for epoch in range(epochs):
        total = 0.0
        for k in order.permutation(len(tensors)):
            x, cut, grad = tensors[k]
            out = net(x)
            loss = bce(out[0], cut, pos_weight=torch.tensor(10.0)) + bce(out[1], grad)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        schedule.step()
        print(f"epoch {epoch + 1}/{epochs}: loss {total / len(tensors):.4f}", flush=True)
    return net


def export(net: torch.nn.Module, path: Path) -> None:
    w = {k: v.detach().numpy() for k, v in net.state_dict().items()}
    arrays = {"dilations": np.asarray(DILATIONS), "wh": w["head.weight"], "bh": w["head.bias"]}
    for i in range(len(DILATIONS) + 1):
        arrays[f"w{i}"], arrays[f"b{i}"] = w[f"layers.{i}.weight"], w[f"layers.{i}.bias"]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


def evaluate(model: gradual.TCN, items: list[dict]) -> dict[str, float]:
    preds = []
    for it in items:
        found = find_transitions(it["m"], CONFIG, model)
        preds.append([(t.kind, t.start_frame, t.end_frame) for t in found])
    return score([it["truth"] for it in items], preds)


def main() -> None:
    from flows.environment import apply_quiet_offline_defaults

    apply_quiet_offline_defaults()
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("capflow-work/gradual-training"))
    ap.add_argument("--train-seeds", default="500-621")
    ap.add_argument("--val-seeds", default="100-119")
    ap.add_argument("--event-seeds", default="700-711", help="training generator, held apart")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=gradual.WEIGHTS)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(args.work / f"train{s}", s, 8, training_video) for s in seeds(args.train_seeds)]
        jobs += [(args.work / f"val{s}", s, 16, benchmark_video) for s in seeds(args.val_seeds)]
        jobs += [(args.work / f"eval{s}", s, 8, training_video) for s in seeds(args.event_seeds)]
        folders = list(pool.map(make_set, *zip(*jobs, strict=True)))
        print(f"videos ready: {time.perf_counter() - t0:.0f} s", flush=True)
        sets = [load_set(f, pool) for f in folders]

    def items(prefix: str) -> list[dict]:
        return [
            it for f, s in zip(folders, sets, strict=True) if f.name.startswith(prefix) for it in s
        ]

    train_items, val_items, event_items = items("train"), items("val"), items("eval")
    print(f"measured: {time.perf_counter() - t0:.0f} s; {len(train_items)} training videos")
    net = train(train_items, args.epochs, args.seed)
    net.eval()
    export(net, args.out)
    model = gradual.TCN.load(args.out)
    for name, items in (("benchmark generator", val_items), ("with in-shot events", event_items)):
        s = evaluate(model, items)
        print(
            f"validation, {name} ({len(items)} videos): cut P {s['cut_p']:.3f} R "
            f"{s['cut_r']:.3f} F1 {s['cut_f1']:.3f}, gradual P {s['gradual_p']:.3f} "
            f"R {s['gradual_r']:.3f} F1 {s['gradual_f1']:.3f}, range IoU {s['gradual_iou']:.3f}"
        )
    print(f"wrote {args.out} in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
