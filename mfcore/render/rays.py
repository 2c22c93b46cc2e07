"""Ray intersections: elementwise ray-capsule, ray-box and ray-room formulas shared by the dense (joint rays) and the
tiled (pixel rays) paths, and the dense :func:`nearest_hits`."""

from __future__ import annotations

import math

import torch

from .scene import Scene

Tensor = torch.Tensor

NEAR_M = 0.05  # hits nearer than this to the camera are ignored
ROOM_HALF_SIZE_M = 7.0  # the room: |x|, |y| <= 7 m, 0 <= z <= ROOM_HEIGHT_M
ROOM_HEIGHT_M = 5.0


def _capsule_constants(origin: Tensor, scene: Scene) -> dict[str, Tensor]:
    """Per (frame, view, capsule) constants of the ray-capsule quadratic for rays from the camera centres (V, 3).

    ba = b − a (B, C, 3); oa = o − a (B, V, C, 3); baba = |ba|² (B, 1, C); baoa = ba·oa, cyl_c = |ba × oa|² − r²|ba|²
    (no cancellation), cap_a = |o − a|² − r², cap_b = |o − b|² − r² (B, V, C); inactive capsules get cyl_c = +inf.
    """
    a, b, r = scene.cap_a, scene.cap_b, scene.cap_r
    ba = b - a
    oa = origin[None, :, None, :] - a[:, None]
    ob = oa - ba[:, None]
    baba = (ba * ba).sum(-1)[:, None, :]
    r2 = (r * r)[:, None, :]
    cyl_c = (torch.linalg.cross(ba[:, None].expand_as(oa), oa) ** 2).sum(-1) - r2 * baba
    off = ~scene.cap_on[:, None, :]
    return dict(ba=ba, oa=oa, baba=baba.expand_as(cyl_c), baoa=(ba[:, None] * oa).sum(-1),
                cyl_c=torch.where(off, torch.full_like(cyl_c, math.inf), cyl_c),
                cap_a=torch.where(off, torch.full_like(cyl_c, math.inf), (oa * oa).sum(-1) - r2),
                cap_b=torch.where(off, torch.full_like(cyl_c, math.inf), (ob * ob).sum(-1) - r2))


def _capsule_t(bard: Tensor, rdoa: Tensor, baba: Tensor, baoa: Tensor, cyl_c: Tensor, cap_a: Tensor,
               cap_b: Tensor) -> Tensor:
    """Distance to a capsule along unit rays (inf when missed), elementwise with broadcasting.

    bard = d·(b − a), rdoa = d·(o − a). The ray first meets the infinite cylinder (a quadratic in t); if that point
    lies between the end planes it is the hit, else the ray is tested against the sphere at the nearer end. Spheres
    are capsules with a = b (then only the end-sphere test acts).
    """
    qa = (baba - bard * bard).clamp_min(1e-9)
    qb = baba * rdoa - baoa * bard
    h = qb * qb - qa * cyl_c
    t_body = (-qb - h.clamp_min(0).sqrt()) / qa
    y = baoa + t_body * bard
    body_hit = (h >= 0) & (y > 0) & (y < baba)
    use_a = y <= 0
    cb = torch.where(use_a, rdoa, rdoa - bard)
    hc = cb * cb - torch.where(use_a, cap_a, cap_b)
    t_cap = -cb - hc.clamp_min(0).sqrt()
    t = torch.where(body_hit, t_body, torch.where(hc >= 0, t_cap, torch.full_like(t_cap, math.inf)))
    return torch.where(t > NEAR_M, t, torch.full_like(t, math.inf))


def _box_local_origin(origin: Tensor, scene: Scene) -> Tensor:
    """Camera centres in every box's frame (centre at 0, turned by −yaw about Z): (B, V, K, 3)."""
    cy, sy = scene.box_yaw.cos()[:, None], scene.box_yaw.sin()[:, None]  # (B, 1, K)
    o = origin[None, :, None, :] - scene.box_c[:, None]
    return torch.stack([cy * o[..., 0] + sy * o[..., 1], -sy * o[..., 0] + cy * o[..., 1], o[..., 2]], -1)


def _rotate_z(d: Tensor, cy: Tensor, sy: Tensor) -> Tensor:
    """Turn vectors d (..., 3) by −yaw about Z (cy = cos yaw, sy = sin yaw broadcast to d[..., 0])."""
    return torch.stack([cy * d[..., 0] + sy * d[..., 1], -sy * d[..., 0] + cy * d[..., 1],
                        d[..., 2].expand_as(cy * d[..., 0])], -1)


def _box_t(o_local: Tensor, d_local: Tensor, half: Tensor, on: Tensor) -> Tensor:
    """Slab-test distance to boxes (inf when missed): ray origin/direction in the box frame (..., 3), half extents
    (..., 3), active flag (...)."""
    d = torch.where(d_local.abs() < 1e-9, torch.full_like(d_local, 1e-9), d_local)
    inv = 1.0 / d
    t1, t2 = (-half - o_local) * inv, (half - o_local) * inv
    near = torch.minimum(t1, t2).amax(-1)
    far = torch.maximum(t1, t2).amin(-1)
    hit = (near <= far) & (near > NEAR_M) & on
    return torch.where(hit, near, torch.full_like(near, math.inf))


def _room_hits(origin: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Exit distance of rays from inside the room box (V, N) and the face: 0 floor, 1 ceiling, 2 walls x, 3 walls y."""
    lo = torch.tensor([-ROOM_HALF_SIZE_M, -ROOM_HALF_SIZE_M, 0.0], device=dirs.device, dtype=dirs.dtype)
    hi = torch.tensor([ROOM_HALF_SIZE_M, ROOM_HALF_SIZE_M, ROOM_HEIGHT_M], device=dirs.device, dtype=dirs.dtype)
    d = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    o = origin[:, None, :]
    t = torch.where(d > 0, (hi - o) / d, (lo - o) / d)  # (V, N, 3)
    t_exit, axis = t.min(-1)
    face = torch.where(axis == 2, (d[..., 2] > 0).long(), axis + 2)
    return t_exit, face


def nearest_hits(origin: Tensor, dirs: Tensor, scene: Scene) -> tuple[Tensor, Tensor]:
    """Dense ray casting for a few rays per frame and view: dirs (B, V, N, 3) unit from the centres (V, 3) →
    distances to every capsule (B, V, N, C) and every box (B, V, N, K), inf where missed."""
    k = _capsule_constants(origin, scene)
    bard = torch.einsum("bvnk,bck->bvnc", dirs, k["ba"])
    rdoa = torch.einsum("bvnk,bvck->bvnc", dirs, k["oa"])
    t_cap = _capsule_t(bard, rdoa, *(k[n][:, :, None, :] for n in ("baba", "baoa", "cyl_c", "cap_a", "cap_b")))
    o_local = _box_local_origin(origin, scene)[:, :, None]  # (B, V, 1, K, 3)
    cy, sy = scene.box_yaw.cos()[:, None, None], scene.box_yaw.sin()[:, None, None]  # (B, 1, 1, K)
    d_local = _rotate_z(dirs[..., None, :], cy, sy)  # (B, V, N, K, 3)
    t_box = _box_t(o_local, d_local, scene.box_e[:, None, None], scene.box_on[:, None, None])
    return t_cap, t_box
