"""Rendering by tiles: pixel rays, and the nearest surface of every pixel from the (frame, view, primitive, tile)
quadruples whose conservative screen rectangle touches the tile."""

from __future__ import annotations

import math

import torch

from .body import _unit
from .rays import NEAR_M, _box_local_origin, _box_t, _capsule_constants, _capsule_t, _rotate_z
from .scene import Scene

Tensor = torch.Tensor


def pixel_rays(K: Tensor, R: Tensor, t: Tensor, image_px: int) -> tuple[Tensor, Tensor]:
    """Camera centres (V, 3) and unit ray directions through every pixel centre (V, H·W, 3), world frame.

    d ∝ Rᵀ K⁻¹ (x, y, 1)ᵀ with pixel centres at integer (x, y), row-major (y outer)."""
    dev, dt = K.device, K.dtype
    ys, xs = torch.meshgrid(torch.arange(image_px, device=dev, dtype=dt), torch.arange(image_px, device=dev, dtype=dt),
                            indexing="ij")
    pix = torch.stack([xs.reshape(-1), ys.reshape(-1), torch.ones(image_px * image_px, device=dev, dtype=dt)], -1)
    M = R.transpose(1, 2) @ torch.linalg.inv(K)  # (V, 3, 3)
    d = torch.einsum("vij,nj->vni", M, pix)
    centre = -(R.transpose(1, 2) @ t[..., None])[..., 0]
    return centre, _unit(d)


def tile_size(image_px: int) -> int:
    """Side of the square pixel tiles used for culling: 8 up to 128² images, 16 above (a divisor of image_px)."""
    want = 8 if image_px <= 128 else 16
    return max(d for d in range(1, want + 1) if image_px % d == 0)


def _to_tiles(x: Tensor, image_px: int, T: int) -> Tensor:
    """(..., H·W, c) row-major → (..., n_tiles, T·T, c) tile-major."""
    n = image_px // T
    lead, c = x.shape[:-2], x.shape[-1]
    x = x.reshape(*lead, n, T, n, T, c)
    nd = len(lead)
    x = x.permute(*range(nd), nd, nd + 2, nd + 1, nd + 3, nd + 4)
    return x.reshape(*lead, n * n, T * T, c)


def _from_tiles(col: Tensor, image_px: int, T: int) -> Tensor:
    """(B, V, n_tiles, T·T, 3) → images (B, V, 3, H, W)."""
    B, V = col.shape[:2]
    n = image_px // T
    col = col.reshape(B, V, n, n, T, T, 3).permute(0, 1, 6, 2, 4, 3, 5)
    return col.reshape(B, V, 3, image_px, image_px)


def _screen_rects(points_cam: Tensor, radius_px: Tensor, K: Tensor, image_px: int) -> Tensor:
    """Pixel rectangles (..., 4) = (x0, x1, y0, y1) holding the projections of points (..., n, 3) (camera frame,
    V axis at dim 1 matching K (V, 3, 3)) grown by radius_px (...); the whole image when a point is not in front."""
    z = points_cam[..., 2]
    Kb = K[None, :, None, None] if points_cam.dim() == 5 else K[None, :, None]
    uvw = (Kb @ points_cam[..., None])[..., 0]
    uv = uvw[..., :2] / z.clamp_min(1e-6)[..., None]
    lo = uv.amin(-2) - radius_px[..., None] - 1.0
    hi = uv.amax(-2) + radius_px[..., None] + 1.0
    behind = (z <= NEAR_M).any(-1) | ~torch.isfinite(radius_px)
    lo = torch.where(behind[..., None], torch.full_like(lo, -1.0), lo)
    hi = torch.where(behind[..., None], torch.full_like(hi, float(image_px)), hi)
    return torch.stack([lo[..., 0], hi[..., 0], lo[..., 1], hi[..., 1]], -1)


def _capsule_rects(scene: Scene, K: Tensor, R: Tensor, t: Tensor, image_px: int) -> Tensor:
    """Conservative screen rectangles of every capsule in every view, (B, V, C, 4).

    A sphere of radius r centred at S (camera frame) projects within f·r·|S| / (S_z (S_z − r)) pixels of the
    projection of S; over the segment this is bounded with the nearest depth and the farthest distance."""
    ends = torch.stack([scene.cap_a, scene.cap_b], 2)  # (B, C, 2, 3)
    cam = torch.einsum("vij,bcej->bvcei", R, ends) + t[None, :, None, None]  # (B, V, C, 2, 3)
    z_min = cam[..., 2].amin(-1)
    dist = cam.norm(dim=-1).amax(-1)
    f = torch.maximum(K[:, 0, 0], K[:, 1, 1])[None, :, None]
    r = scene.cap_r[:, None]
    gap = z_min - r
    r_px = torch.where(gap > NEAR_M, f * r * dist / (z_min * gap.clamp_min(NEAR_M)), torch.full_like(gap, math.inf))
    return _screen_rects(cam, r_px, K, image_px)


def _box_corners(scene: Scene) -> Tensor:
    """World corners of every box, (B, K, 8, 3)."""
    signs = torch.tensor([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=scene.box_e.dtype,
                         device=scene.box_e.device)
    local = signs[None, None] * scene.box_e[:, :, None]  # (B, K, 8, 3)
    cy, sy = scene.box_yaw.cos()[..., None], scene.box_yaw.sin()[..., None]
    world = torch.stack([cy * local[..., 0] - sy * local[..., 1], sy * local[..., 0] + cy * local[..., 1],
                         local[..., 2]], -1)
    return world + scene.box_c[:, :, None]


def _box_rects(scene: Scene, K: Tensor, R: Tensor, t: Tensor, image_px: int) -> Tensor:
    cam = torch.einsum("vij,bkej->bvkei", R, _box_corners(scene)) + t[None, :, None, None]  # (B, V, K, 8, 3)
    return _screen_rects(cam, torch.zeros(cam.shape[:3], dtype=cam.dtype, device=cam.device), K, image_px)


def _candidates(rects: Tensor, on: Tensor, image_px: int, T: int) -> Tensor:
    """(frame, view, primitive, tile) quadruples (M, 4) whose rectangle (B, V, P, 4) touches the tile's pixels."""
    n = image_px // T
    start = torch.arange(n, device=rects.device, dtype=rects.dtype) * T
    end = start + (T - 1)
    ox = (start <= rects[..., 1:2]) & (end >= rects[..., 0:1])  # (B, V, P, n)
    oy = (start <= rects[..., 3:4]) & (end >= rects[..., 2:3])
    mask = oy[..., :, None] & ox[..., None, :] & on[:, None, :, None, None]  # (B, V, P, n, n)
    idx = mask.nonzero()  # (M, 5): b, v, p, ty, tx
    return torch.stack([idx[:, 0], idx[:, 1], idx[:, 2], idx[:, 3] * n + idx[:, 4]], -1)


def _scatter_min(t_min: Tensor, pix: Tensor, t: Tensor) -> None:
    t_min.scatter_reduce_(0, pix.reshape(-1), t.reshape(-1), "amin", include_self=True)


def _trace_tiles(origin: Tensor, tile_dirs: Tensor, scene: Scene, K: Tensor, R: Tensor, t: Tensor, image_px: int,
                 T: int, max_elements: int) -> tuple[Tensor, Tensor]:
    """Nearest hit of every pixel ray: distance (B, V, n_tiles, T²) (inf: none) and primitive id (capsule c → c,
    box k → C + k, none → −1)."""
    B, C, Kb = scene.num_frames, scene.cap_a.shape[1], scene.box_c.shape[1]
    V, n_tiles, T2 = tile_dirs.shape[:3]
    flat = B * V * n_tiles * T2
    t_min = torch.full((flat,), math.inf, device=origin.device)
    ar = torch.arange(T2, device=origin.device)
    kc = _capsule_constants(origin, scene)
    cand_c = _candidates(_capsule_rects(scene, K, R, t, image_px), scene.cap_on, image_px, T)
    o_box = _box_local_origin(origin, scene)  # (B, V, K, 3)
    cand_b = _candidates(_box_rects(scene, K, R, t, image_px), scene.box_on, image_px, T)
    step = max(1, max_elements // T2)
    hits = []  # (pixel index, distance, primitive id) of each chunk of candidates
    for kind, cand in (("capsule", cand_c), ("box", cand_b)):
        for s in range(0, cand.shape[0], step):
            b, v, p, tile = cand[s:s + step].unbind(-1)
            d = tile_dirs[v, tile]  # (m, T², 3)
            if kind == "capsule":
                bard = torch.einsum("mnk,mk->mn", d, kc["ba"][b, p])
                rdoa = torch.einsum("mnk,mk->mn", d, kc["oa"][b, v, p])
                dist = _capsule_t(bard, rdoa, *(kc[n][b, v, p][:, None] for n in ("baba", "baoa", "cyl_c", "cap_a",
                                                                                   "cap_b")))
                pid = p
            else:
                yaw = scene.box_yaw[b, p][:, None]
                dist = _box_t(o_box[b, v, p][:, None], _rotate_z(d, yaw.cos(), yaw.sin()),
                              scene.box_e[b, p][:, None], scene.box_on[b, p][:, None])
                pid = p + C
            pix = ((b * V + v) * n_tiles + tile)[:, None] * T2 + ar  # (m, T²)
            _scatter_min(t_min, pix, dist)
            hits.append((pix, dist, pid))
    prim = torch.full((flat,), -1, dtype=torch.long, device=origin.device)
    for pix, dist, pid in hits:  # the winner: the largest id among equal nearest distances (deterministic)
        win = (dist == t_min[pix]) & torch.isfinite(dist)
        prim.scatter_reduce_(0, pix[win], pid[:, None].expand_as(pix)[win], "amax", include_self=True)
    return t_min.reshape(B, V, n_tiles, T2), prim.reshape(B, V, n_tiles, T2)
