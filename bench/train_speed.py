"""Training speed: steps/s per preset, channels-last vs contiguous, measured in one run.

A step is the full training step (style net forward, loss net on a 2x view, backward, Adam)
on random 256x256 crops, batch 4, with SqueezeNet as the loss network (random weights: speed
does not depend on them). Run by hand:

    python bench/train_speed.py --presets nano,tiny --steps 10
"""

from __future__ import annotations

import argparse
import time

import torch

from palmbrush.models import PRESETS, StyleNet
from palmbrush.models.loss_nets import squeezenet
from palmbrush.train.losses import content_loss, gram_matrix, loss_view, style_loss


def steps_per_second(preset: str, channels_last: bool, steps: int, size: int, batch: int) -> float:
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = StyleNet(PRESETS[preset]).to(memory_format=fmt)
    loss_net = squeezenet().to(memory_format=fmt)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    taps = ["conv1", "fire3", "fire5", "fire6", "fire7"]
    style = {k: gram_matrix(v) for k, v in loss_net(torch.rand(1, 3, 256, 256), taps).items()}
    batch_x = torch.rand(batch, 3, size, size).contiguous(memory_format=fmt)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        out = net(batch_x)
        feats = loss_net(loss_view(out, 2, (1, 0)), taps)
        with torch.no_grad():
            wanted = loss_net(loss_view(batch_x, 2, (1, 0)), ["fire3", "fire5"])
        loss = content_loss(feats, wanted) + style_loss(feats, {k: style[k] for k in taps})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    times = sorted(times[2:])
    return 1 / times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="nano,tiny")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.size}px crops, loss on a 2x view, median of {args.steps} steps")  # fmt: skip
    print("preset    contiguous steps/s  channels-last steps/s  ratio")
    for preset in args.presets.split(","):
        plain = steps_per_second(preset, False, args.steps, args.size, args.batch)
        last = steps_per_second(preset, True, args.steps, args.size, args.batch)
        print(f"{preset:<9} {plain:>18.2f}  {last:>21.2f}  {last / plain:>5.2f}x")


if __name__ == "__main__":
    main()
