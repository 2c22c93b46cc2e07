"""Rendering images: every frame of a scene in every view, in chunks of frames that fit a memory budget
(:func:`render_images`)."""

from __future__ import annotations

import torch

from .rays import _room_hits
from .scene import Scene
from .shading import _shade
from .tiles import _from_tiles, _to_tiles, _trace_tiles, pixel_rays, tile_size

Tensor = torch.Tensor


def _chunk_frames(num_views: int, num_rays: int, device: torch.device) -> int:
    budget_bytes = (6 << 30) if device.type == "cuda" else (256 << 20)
    per_frame = 4 * 80 * num_views * num_rays  # ~80 live floats per pixel ray while shading
    return max(1, int(budget_bytes // per_frame))


def render_images(scene: Scene, K: Tensor, R: Tensor, t: Tensor, image_px: int,
                  chunk_frames: int | None = None) -> Tensor:
    """Render every frame of ``scene`` in every view: K, R (V, 3, 3), t (V, 3) → images (B, V, 3, H, W) float32
    in [0, 1] on the scene's device. Frames go ``chunk_frames`` at a time (default: what fits a memory budget of
    6 GiB on CUDA, 256 MiB on the CPU); the images do not depend on the chunking."""
    dev = scene.cap_a.device
    K, R, t = (x.to(dev, torch.float32) for x in (K, R, t))
    origin, dirs = pixel_rays(K, R, t, image_px)
    T = tile_size(image_px)
    tile_dirs = _to_tiles(dirs, image_px, T)  # (V, n_tiles, T², 3)
    d_flat = tile_dirs.reshape(dirs.shape)  # (V, N, 3) in tile-major order
    room_t, room_face = _room_hits(origin, d_flat)
    V, N = d_flat.shape[:2]
    B = scene.num_frames
    out = torch.empty(B, V, 3, image_px, image_px, device=dev)
    step = chunk_frames or _chunk_frames(V, N, dev)
    max_elements = (1 << 25) if dev.type == "cuda" else (1 << 21)
    for s in range(0, B, step):
        sc = scene.frames(slice(s, s + step))
        t_hit, prim = _trace_tiles(origin, tile_dirs, sc, K, R, t, image_px, T, max_elements)
        col = _shade(origin, d_flat, t_hit.reshape(-1, V, N), prim.reshape(-1, V, N), room_t, room_face, sc)
        out[s:s + step] = _from_tiles(col.reshape(-1, V, N // (T * T), T * T, 3), image_px, T)
    return out
