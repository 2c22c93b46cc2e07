"""Cost of Tekin et al.'s fusion networks before and after pruning (Sec. 3.1: drop w≈0 fusion and w≈1 data layers).

Speed and size do not depend on the trained weights, so this times freshly built networks at the profile's sizes:
the unpruned TrainableFusion network (all three streams), its pruned form for every fusion layer β = 0..L (the
FixedFusion network at β), and the single-stream baselines. For each: parameters, inference ms per image and training
images per second (Adam step on Eq. (4)).

    python benchmarks/bench_pruning.py --profile full --device cuda --amp
    python benchmarks/bench_pruning.py --profile smoke --device cpu --batch 32 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mfcore import trainable_fusion as tf  # noqa: E402
from mfcore.profiles import get_profile, resolve_device  # noqa: E402


def train_images_per_s(net, images, cms, joints, lambda_alpha, steps, amp):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net.train()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp and images.is_cuda):
            pred = net(images, cms)[:, 0]  # one network: member 0 of (B, 1, J, 3)
        loss = tf.pose_loss(pred, joints) + tf.sharpness_penalty(net, lambda_alpha).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    step()
    if images.is_cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if images.is_cuda:
        torch.cuda.synchronize()
    return steps * images.shape[0] / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=None, help="images per forward (default: the profile's batch_size)")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--train-steps", type=int, default=10)
    ap.add_argument("--amp", action="store_true", help="bf16 autocast on CUDA")
    ap.add_argument("--out", default="", help="optional CSV path")
    args = ap.parse_args(argv)

    import pandas as pd

    profile = get_profile(args.profile)
    device = resolve_device(args.device)
    sizes = profile.trainable_fusion
    batch = args.batch or sizes.batch_size
    H, h = tf.crop_sides_px(profile)  # the networks read person crops
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, H, H, generator=g).to(device)
    cms = torch.rand(batch, 17, h, h, generator=g).to(device)
    joints = (0.3 * torch.randn(batch, 17, 3, generator=g)).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    configs = [("TrainableFusion", None, "unpruned")]
    configs += [("FixedFusion", b, f"pruned beta={b}") for b in range(sizes.layers + 1)]
    configs += [("ImageOnly", None, ""), ("CMOnly", None, "")]
    rows = []
    for method, beta, note in configs:
        net = tf.build_fusion_net(method, profile, seeds=(0,), beta=beta).to(device)
        ms = tf.inference_ms_per_image(net, images, cms, repeats=args.repeats, warmup=3, amp=args.amp)
        ips = train_images_per_s(net, images, cms, joints, sizes.lambda_alpha, args.train_steps, args.amp)
        rows.append(dict(method=method, beta=beta if beta is not None else "", note=note,
                         params=tf.count_parameters(net), ms_per_image=ms, train_images_per_s=ips))
        print(f"{method:16s} {note:16s} params {rows[-1]['params']:>10,d}  {ms:8.4f} ms/img  {ips:10.0f} train img/s",
              flush=True)
    df = pd.DataFrame(rows)
    df.insert(0, "device", str(device) if device.type == "cpu" else torch.cuda.get_device_name(device))
    df.insert(1, "profile", profile.name)
    df.insert(2, "batch", batch)
    if args.out:
        df.to_csv(args.out, index=False)
    return df


if __name__ == "__main__":
    main()
