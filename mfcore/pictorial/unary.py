"""The unary term: heatmaps summed over views at 3D points (bilinear or bicubic), and the anti-aliasing blur that
matches the heatmaps to the spacing of a grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .views import _project

Tensor = torch.Tensor


def _log_unary(hm: Tensor, P: Tensor, points: Tensor, floor: float, mode: str = "bilinear",
               size: Tensor | None = None) -> Tensor:
    """log(φ + floor·max φ) at ``points`` (B, Jp, S, 3), Jp ∈ {1 (shared grid), J} → (B, J, S).

    φ_j(X) = Σ_v heatmap_vj(project_v(X)), read with ``mode`` ("bilinear" or "bicubic", clamped at 0); a point outside
    a view's window or behind it adds 0 for that view. One ``grid_sample`` for all frames, views and joints. The floor
    (relative to the best point) keeps log φ finite. ``size`` is ``[w − 1, h − 1]`` on the device when the caller has it
    (a CUDA graph cannot copy it from the host).
    """
    B, V, J, h, w = hm.shape
    Jp, S = points.shape[1], points.shape[2]
    uv, z = _project(P.float(), points.reshape(B, Jp * S, 3).float())  # (B, V, Jp·S, 2), (B, V, Jp·S)
    inside = (z > 0) & (uv[..., 0] >= -0.5) & (uv[..., 0] <= w - 0.5) & (uv[..., 1] >= -0.5) & (uv[..., 1] <= h - 0.5)
    if size is None:
        size = torch.tensor([w - 1, h - 1], dtype=uv.dtype, device=uv.device)
    grid = (2.0 * uv / size - 1.0).nan_to_num(0.0, 0.0, 0.0)
    if Jp == 1:  # one grid for all joints: sample every channel at the same points
        val = F.grid_sample(hm.reshape(B * V, J, h, w), grid.reshape(B * V, 1, S, 2), mode=mode,
                            padding_mode="border", align_corners=True).reshape(B, V, J, S)
        val = val * inside[:, :, None, :]
    else:  # a grid per joint: one single-channel image per (frame, view, joint)
        val = F.grid_sample(hm.reshape(B * V * J, 1, h, w), grid.reshape(B * V * J, 1, S, 2), mode=mode,
                            padding_mode="border", align_corners=True).reshape(B, V, J, S)
        val = val * inside.reshape(B, V, J, S)
    val = val.clamp_min(0.0)  # bicubic can undershoot next to a sharp peak
    phi = val[:, 0]
    for v in range(1, V):  # sum over views, element-wise (independent of the batch size)
        phi = phi + val[:, v]
    top = phi.amax(-1, keepdim=True)
    return torch.log(phi + floor * top + 1e-30)


ANTIALIAS_FRACTION = 0.5  # σ of the smoothing, as a fraction of the projected grid spacing


def _smooth_to_grid(hm: Tensor, P: Tensor, centre_m: Tensor, spacing_m: float) -> Tensor:
    """Heatmaps low-pass filtered to the scale of a grid of ``spacing_m`` seen at ``centre_m`` (B, 3): (B, V, J, h, w).

    A grid much coarser than a heatmap's peak samples it between its cells and misses it (aliasing). Each (frame, view)
    gets a Gaussian blur of σ = ``ANTIALIAS_FRACTION`` × the projected spacing (RMS over the three axes, in heatmap
    px), truncated at 3σ per channel (so a frame's result does not depend on the batch); σ < 0.3 px leaves it as is.
    """
    sigma, radius = blur_sigma_px(P, centre_m, spacing_m, hm.shape[-2:])
    r = int(radius.max())
    return hm if r == 0 else blur(hm, sigma, radius, r)


def blur_sigma_px(P: Tensor, centre_m: Tensor, spacing_m, heatmap_hw) -> tuple[Tensor, Tensor]:
    """σ in heatmap px of :func:`_smooth_to_grid`'s blur for a grid of ``spacing_m`` at ``centre_m`` (B, 3), and its
    radius ``ceil(3σ)`` (0 where σ < 0.3 px: no blur): (B, V) each, or (B, T, V) for a sequence of T spacings."""
    h, w = int(heatmap_hw[0]), int(heatmap_hw[1])
    spacings = torch.tensor([spacing_m] if isinstance(spacing_m, (int, float)) else list(spacing_m),
                            dtype=torch.float32, device=centre_m.device)  # (T,)
    T, B = spacings.shape[0], centre_m.shape[0]
    steps = torch.eye(3, device=centre_m.device) * spacings[:, None, None]  # (T, 3, 3)
    c = centre_m.float()[:, None, None, :]  # (B, 1, 1, 3)
    pts = torch.cat([c.expand(B, T, 1, 3), c + steps[None]], 2)  # (B, T, 4, 3)
    uv, _ = _project(P.float(), pts.reshape(B, T * 4, 3))  # (B, V, T·4, 2)
    uv = uv.reshape(B, -1, T, 4, 2)
    foot = (uv[..., 1:, :] - uv[..., :1, :]).norm(dim=-1).pow(2).mean(-1).sqrt()  # (B, V, T) px
    sigma = (ANTIALIAS_FRACTION * foot).nan_to_num(0.0, 0.0, 0.0).clamp(0.0, float(max(h, w)))
    radius = torch.where(sigma < 0.3, torch.zeros_like(sigma), torch.ceil(3 * sigma))
    if isinstance(spacing_m, (int, float)):
        return sigma[..., 0], radius[..., 0]
    return sigma.transpose(1, 2), radius.transpose(1, 2)


def blur(hm: Tensor, sigma: Tensor, radius: Tensor, r: int) -> Tensor:
    """Separable Gaussian blur of (B, V, J, h, w) heatmaps, σ (B, V) px truncated at ``radius`` (B, V), in a kernel of
    ``2r + 1`` taps (r ≥ every radius; the taps beyond a channel's radius are 0)."""
    B, V, J, h, w = hm.shape
    x = torch.arange(-r, r + 1, device=hm.device, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma[..., None].clamp_min(1e-3)) ** 2) * (x.abs() <= radius[..., None])  # (B, V, K)
    k = (k / k.sum(-1, keepdim=True))[:, :, None].expand(B, V, J, 2 * r + 1).reshape(B * V * J, 1, 2 * r + 1)
    y = F.conv2d(hm.reshape(1, B * V * J, h, w), k[..., None], padding=(r, 0), groups=B * V * J)  # along y
    y = F.conv2d(y, k[:, :, None, :], padding=(0, r), groups=B * V * J)  # along x
    return y.reshape(B, V, J, h, w)
