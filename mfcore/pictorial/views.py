"""Heatmaps and the cameras that see them: projections at heatmap resolution, points projected into every view,
which views of a frame are usable, and ideal Gaussian heatmaps for tests, benchmarks and studies."""

from __future__ import annotations

import warnings

import torch

from .. import data

Tensor = torch.Tensor


def heatmap_projections(projections: Tensor, image_px: int, heatmap_px: int) -> Tensor:
    """Projection matrices (V, 3, 4) at image resolution → the same cameras at heatmap resolution.

    Pixel centres stay at integers: x_hm = (x_img + 0.5)·heatmap_px/image_px − 0.5 (``geometry.scale_pixels``).
    """
    if projections.dim() != 3 or projections.shape[1:] != (3, 4):
        raise ValueError(f"projections must be (V, 3, 4), got {tuple(projections.shape)}")
    if image_px <= 0 or heatmap_px <= 0:
        raise ValueError(f"image_px and heatmap_px must be positive, got {image_px} and {heatmap_px}")
    s = heatmap_px / image_px
    A = torch.tensor([[s, 0.0, 0.5 * s - 0.5], [0.0, s, 0.5 * s - 0.5], [0.0, 0.0, 1.0]],
                     dtype=projections.dtype, device=projections.device)
    return A @ projections


def _project(P: Tensor, X: Tensor) -> tuple[Tensor, Tensor]:
    """P (V, 3, 4), X (B, N, 3) → pixels (B, V, N, 2) and depth (B, V, N).

    Written element-wise (no matmul) so that a frame's result does not depend on how many frames share the batch.
    """
    P = P.to(X.dtype)[None, :, None]  # (1, V, 1, 3, 4)
    Xe = X[:, None, :, None, :]  # (B, 1, N, 1, 3)
    h = Xe[..., 0] * P[..., 0] + Xe[..., 1] * P[..., 1] + Xe[..., 2] * P[..., 2] + P[..., 3]  # (B, V, N, 3)
    z = h[..., 2]
    return h[..., :2] / z[..., None], z


def _check_inputs(heatmaps: Tensor, projections_hm: Tensor) -> None:
    if heatmaps.dim() != 5:
        raise ValueError(f"heatmaps must be (B, V, J, h, w), got {tuple(heatmaps.shape)}")
    B, V, J, h, w = heatmaps.shape
    if B < 1 or J < 1 or h < 2 or w < 2:
        raise ValueError(f"heatmaps need B, J >= 1 and h, w >= 2, got {tuple(heatmaps.shape)}")
    if projections_hm.dim() != 3 or projections_hm.shape != (V, 3, 4):
        raise ValueError(f"projections_hm must be (V={V}, 3, 4) at heatmap resolution, "
                         f"got {tuple(projections_hm.shape)}")
    if V < 2:
        raise ValueError(f"3D estimation needs at least 2 views, got V={V}")


def usable_flags(heatmaps: Tensor) -> Tensor:
    """(B, V) bool: the view's heatmaps for that frame are finite and not all ≤ 0 (on the heatmaps' device, no sync)."""
    finite = torch.isfinite(heatmaps).flatten(2).all(-1)  # (B, V)
    signal = (heatmaps.nan_to_num(0.0, 0.0, 0.0) > 0).flatten(2).any(-1)
    return finite & signal


def report_unusable(ok: Tensor, stacklevel: int = 2) -> None:
    """Warn about the (frame, view) pairs that ``ok`` (B, V) rules out (``stacklevel`` as :func:`warnings.warn`'s); a
    ``ValueError`` naming the frames left with fewer than 2 usable views."""
    if not bool(ok.all()):
        bad = (~ok).nonzero().tolist()
        warnings.warn(f"pictorial: ignoring {len(bad)} view(s) with all-zero or non-finite heatmaps, as (frame, view): "
                      f"{bad[:12]}{' …' if len(bad) > 12 else ''}", RuntimeWarning, stacklevel=stacklevel)
        short = (ok.sum(1) < 2).nonzero().flatten().tolist()
        if short:
            raise ValueError(f"frame(s) {short[:12]}{' …' if len(short) > 12 else ''} have fewer than 2 usable views "
                             f"(the others are all-zero or NaN); 3D estimation needs at least 2")


def usable_views(heatmaps: Tensor) -> Tensor:
    """(B, V) bool: the view's heatmaps for that frame are finite and not all ≤ 0. Warns about the others.

    Raises ``ValueError`` naming the frames left with fewer than 2 usable views.
    """
    ok = usable_flags(heatmaps)
    report_unusable(ok, stacklevel=4)
    return ok


def _clean(heatmaps: Tensor, ok: Tensor) -> Tensor:
    """Float32 heatmaps with unusable views zeroed and negative responses clamped to 0."""
    hm = heatmaps.float()
    return torch.where(ok[:, :, None, None, None], hm, torch.zeros((), device=hm.device)).clamp_min(0.0)


def render_gaussian_heatmaps(joints_3d_m: Tensor, projections_hm: Tensor, heatmap_px: int, sigma_px: float,
                             jitter_px: float = 0.0, outlier_fraction: float = 0.0, seed: int = 0) -> Tensor:
    """Ideal heatmaps: a unit-peak Gaussian of ``sigma_px`` at every projected joint, (B, J, 3) → (B, V, J, h, h).

    For tests, benchmarks and the quantisation study. ``jitter_px`` moves each Gaussian by N(0, jitter²) per axis;
    ``outlier_fraction`` of the (frame, view, joint) channels put their peak at a uniformly random pixel instead
    (a detector failure). Joints behind a camera give an all-zero channel. Deterministic in ``seed``.
    """
    if sigma_px <= 0 or jitter_px < 0 or not 0.0 <= outlier_fraction <= 1.0 or heatmap_px < 2:
        raise ValueError(f"need sigma_px > 0, jitter_px >= 0, 0 <= outlier_fraction <= 1 and heatmap_px >= 2; got "
                         f"{sigma_px}, {jitter_px}, {outlier_fraction}, {heatmap_px}")
    dev = joints_3d_m.device
    x, z = _project(projections_hm.float().to(dev), joints_3d_m.float())  # (B, V, J, 2), (B, V, J)
    gen = torch.Generator().manual_seed(seed)
    if jitter_px > 0:
        x = x + jitter_px * torch.randn(x.shape, generator=gen).to(dev)
    if outlier_fraction > 0:
        swap = (torch.rand(z.shape, generator=gen) < outlier_fraction).to(dev)
        anywhere = (torch.rand(x.shape, generator=gen) * (heatmap_px - 1)).to(dev)
        x = torch.where(swap[..., None], anywhere, x)
    return data.gaussian_heatmaps(x, heatmap_px, sigma_px) * (z > 0)[..., None, None]
