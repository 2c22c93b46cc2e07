"""Reading trained fusion networks: Fig. 7's feature correlation between the streams, and the learning curve's plateau.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .network import STREAMS, FusionNet

Tensor = torch.Tensor

CORRELATION_BLOCKS = ("image-image", "cm-cm", "image-cm")


def squared_pearson(a: Tensor, b: Tensor) -> Tensor:
    """Squared Pearson correlation R² between every column of ``a`` (N, P) and every column of ``b`` (N, Q), (P, Q).

    A constant column has no defined correlation; its R² is reported as 0.
    """
    if a.dim() != 2 or b.dim() != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must be (N, P) and (N, Q) with the same N, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 samples for a correlation, got N={a.shape[0]}")
    a, b = a.double(), b.double()
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = a.norm(dim=0), b.norm(dim=0)
    r = (a.T @ b) / (na[:, None] * nb[None, :])
    r = torch.where((na[:, None] > 0) & (nb[None, :] > 0), r, torch.zeros_like(r))
    return (r**2).clamp(max=1.0).float()


@torch.no_grad()
def stream_correlation_r2(net: FusionNet, images: Tensor, confidence_maps: Tensor, layer: int | None = None) -> Tensor:
    """Fig. 7 of Tekin: R² between every pair of feature channels of the image and confidence-map streams, at the
    last convolutional layer (or ``layer``), for every member: (M, 2C, 2C), image-stream channels first. Each channel
    is one variable; its samples are all (image, position) pairs of the batch."""
    if net.streams != STREAMS:
        raise ValueError(f"the correlation needs both streams, this network has {net.streams}")
    layer = net.arch.conv_layers if layer is None else layer
    built = net.layers if net.complete else net.fixed_beta
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= min(built, net.arch.conv_layers):
        raise ValueError(f"layer must be a convolutional data-stream layer in [1, {min(built, net.arch.conv_layers)}], "
                         f"got {layer!r}")
    was_training = net.training
    net.eval()
    feats = net.data_features(images.float(), confidence_maps.float(), layer)  # [(B, M, C, s, s)] × 2
    net.train(was_training)
    out = []
    for m in range(net.members):
        cols = [f[:, m].permute(0, 2, 3, 1).reshape(-1, f.shape[2]) for f in feats]  # (B·s·s, C)
        both = torch.cat(cols, dim=1)
        out.append(squared_pearson(both, both))
    return torch.stack(out)


def correlation_blocks(r2: Tensor) -> dict[str, float]:
    """Mean R² of one (2C, 2C) matrix in its three blocks: between distinct channels of the image stream, of the
    confidence-map stream, and across the two streams (Fig. 7's off-diagonal blocks)."""
    if r2.dim() != 2 or r2.shape[0] != r2.shape[1] or r2.shape[0] % 2:
        raise ValueError(f"r2 must be a (2C, 2C) matrix, got {tuple(r2.shape)}")
    C = r2.shape[0] // 2
    off = ~torch.eye(C, dtype=torch.bool, device=r2.device)
    return {"image-image": float(r2[:C, :C][off].mean()), "cm-cm": float(r2[C:, C:][off].mean()),
            "image-cm": float(r2[:C, C:].mean())}


def last_doubling_gain(curve: pd.DataFrame, value: str = "mpjpe_mm") -> pd.DataFrame:
    """How much the last doubling of the training set lowers the error, per seed: rows of (seed, from_samples,
    to_samples, before, after, relative_gain = 1 − after / before) from a learning curve with columns ``seed,
    train_samples`` and ``value`` (its two largest sizes must differ by a factor of 2)."""
    sizes = np.sort(curve.train_samples.unique())
    if len(sizes) < 2:
        raise ValueError("a learning curve needs at least two training-set sizes")
    small, large = int(sizes[-2]), int(sizes[-1])
    if large != 2 * small:
        raise ValueError(f"the two largest training sets must differ by a doubling, got {small} and {large}")
    rows = []
    for seed, g in curve.groupby("seed"):
        by = g.set_index("train_samples")[value]
        if small in by.index and large in by.index:
            rows.append(dict(seed=seed, from_samples=small, to_samples=large, before=float(by[small]),
                             after=float(by[large]), relative_gain=1 - float(by[large]) / float(by[small])))
    return pd.DataFrame(rows)
