"""Shading: Lambert + ambient colours of the body, the occluders and the textured room (floor tiles, wall stripes,
block noise) where each pixel ray hits."""

from __future__ import annotations

import torch

from .body import _unit
from .rays import _rotate_z
from .scene import Scene

Tensor = torch.Tensor


def _room_colour(origin: Tensor, d: Tensor, room_t: Tensor, room_face: Tensor, s: Scene) -> Tensor:
    """Shaded room colour (B, V, N, 3) of every pixel ray: floor tiles or wall stripes with block noise; the room's
    geometry (V, N) is the same for every frame, only its textures and the light change."""
    q = origin[:, None, :] + room_t[..., None] * d  # (V, N, 3) hit points on the room
    face = room_face
    tile = s.tex[:, 0, None, None]  # (B, 1, 1)
    checker = (torch.floor(q[..., 0] / tile) + torch.floor(q[..., 1] / tile)) % 2  # (B, V, N)
    along = torch.where(face == 2, q[..., 1], q[..., 0])  # (V, N) horizontal coordinate on a wall
    coord = torch.where(s.tex[:, 2, None, None] > 0.5, q[..., 2], along)
    stripes = torch.floor(coord / s.tex[:, 1, None, None]) % 2
    is_floor = face == 0
    mix = torch.where(is_floor, checker, stripes)[..., None]  # (B, V, N, 1)
    first = torch.where(is_floor[..., None], s.floor_rgb[:, None, None, 0], s.wall_rgb[:, None, None, 0])
    second = torch.where(is_floor[..., None], s.floor_rgb[:, None, None, 1], s.wall_rgb[:, None, None, 1])
    base = first + (second - first) * mix
    u_tex = torch.where(face <= 1, q[..., 0], along)
    v_tex = torch.where(face <= 1, q[..., 1], q[..., 2])
    lattice = torch.floor(u_tex / 0.1) * 12.9898 + torch.floor(v_tex / 0.1) * 78.233  # (V, N)
    noise = torch.sin(lattice + s.tex[:, 4, None, None] * 37.719) * 43758.5453
    noise = noise - noise.floor() - 0.5  # (B, V, N) block noise in [-0.5, 0.5)
    wall_sign = -torch.sign(torch.where(face == 2, d[..., 0], d[..., 1]))  # (V, N)
    n_room = torch.stack([torch.where(face == 2, wall_sign, 0.0), torch.where(face == 3, wall_sign, 0.0),
                          torch.where(face == 0, 1.0, torch.where(face == 1, -1.0, 0.0))], -1)  # (V, N, 3)
    lambert = torch.einsum("vnk,bk->bvn", n_room, s.light).clamp_min(0)
    amb = s.ambient[:, None, None]
    shade = (amb + (1 - amb) * lambert) * (1 + 2 * s.tex[:, 3, None, None] * noise)
    return base * shade[..., None]


def _shade(origin: Tensor, d: Tensor, t_hit: Tensor, prim: Tensor, room_t: Tensor, room_face: Tensor,
           s: Scene) -> Tensor:
    """Colours (B, V, N, 3) given the nearest primitive per pixel ray: Lambert + ambient on the body, the occluders
    and the room. d (V, N, 3); t_hit, prim (B, V, N); room_* (V, N). Surfaces are shaded only where they are hit."""
    B, V, N = prim.shape
    C = s.cap_a.shape[1]
    col = _room_colour(origin, d, room_t, room_face, s).reshape(-1, 3)  # (B·V·N, 3)
    flat, t_flat = prim.reshape(-1), t_hit.reshape(-1)

    def hit_points(i):  # frame index and world hit point of flat pixel indices i
        b, v, n = i // (V * N), (i // N) % V, i % N
        return b, origin[v] + t_flat[i, None] * d[v, n]

    def lambert(albedo, normal, b):
        amb = s.ambient[b][:, None]
        return albedo * (amb + (1 - amb) * (normal * s.light[b]).sum(-1, keepdim=True).clamp_min(0))

    # capsules: normal from the nearest point of the segment
    i = torch.nonzero((flat >= 0) & (flat < C)).squeeze(1)
    if i.numel():
        b, p = hit_points(i)
        c = flat[i]
        a, ab = s.cap_a[b, c], s.cap_b[b, c] - s.cap_a[b, c]
        w = (((p - a) * ab).sum(-1, keepdim=True) / (ab * ab).sum(-1, keepdim=True).clamp_min(1e-12)).clamp(0, 1)
        col[i] = lambert(s.cap_rgb[b, c], _unit(p - (a + w * ab)), b)
    # boxes: the face whose slab the hit point lies on, turned back to the world
    i = torch.nonzero(flat >= C).squeeze(1)
    if i.numel():
        b, p = hit_points(i)
        k = flat[i] - C
        cy, sy = s.box_yaw[b, k].cos(), s.box_yaw[b, k].sin()
        rel = _rotate_z(p - s.box_c[b, k], cy, sy) / s.box_e[b, k]
        axis = rel.abs().argmax(-1, keepdim=True)
        n = torch.zeros_like(rel).scatter_(-1, axis, torch.sign(rel.gather(-1, axis)))
        n = torch.stack([cy * n[:, 0] - sy * n[:, 1], sy * n[:, 0] + cy * n[:, 1], n[:, 2]], -1)
        col[i] = lambert(s.box_rgb[b, k], n, b)
    return col.reshape(B, V, N, 3).clamp(0, 1)
