"""One frame's scene, drawn from a seed: the body's clothes, box and pillar occluders away from the person, room
textures and light (:class:`Scene`, :func:`sample_scene`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from .body import BODY_PRIMITIVES, NUM_BODY, body_primitives

Tensor = torch.Tensor

MAX_BOXES = 2
MAX_PILLARS = 2
LEFT_SHADE = 0.98  # left limbs are 2% darker than right ones: a subtle cue at most
NUM_CAPSULES = NUM_BODY + MAX_PILLARS  # pillars are capsules after the body ones


@dataclass
class Scene:
    """Everything drawn for B frames. Capsules: the NUM_BODY body primitives then MAX_PILLARS pillars."""

    cap_a: Tensor  # (B, C, 3) metres
    cap_b: Tensor  # (B, C, 3)
    cap_r: Tensor  # (B, C) metres; inactive pillars have radius 0 and are masked by cap_on
    cap_on: Tensor  # (B, C) bool
    cap_rgb: Tensor  # (B, C, 3) albedo in [0, 1]
    box_c: Tensor  # (B, K, 3) centre, metres
    box_e: Tensor  # (B, K, 3) half extents, metres
    box_yaw: Tensor  # (B, K) radians about Z
    box_on: Tensor  # (B, K) bool
    box_rgb: Tensor  # (B, K, 3)
    light: Tensor  # (B, 3) unit vector towards the light
    ambient: Tensor  # (B,)
    floor_rgb: Tensor  # (B, 2, 3) the two tile colours
    wall_rgb: Tensor  # (B, 2, 3) the two stripe colours
    tex: Tensor  # (B, 5): tile size m, stripe period m, stripes horizontal (1) / vertical (0), noise amplitude, salt

    @property
    def num_frames(self) -> int:
        return self.cap_a.shape[0]

    def to(self, device) -> "Scene":
        return Scene(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def frames(self, index) -> "Scene":
        return Scene(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def sample_scene(joints_3d_m: Tensor, seed: int) -> Scene:
    """Draw the per-frame scene (clothes, occluders, room textures, light) for poses (B, J, 3), deterministic in seed.

    Frame i's draws depend only on (seed, i) and not on B, so rendering a prefix of frames gives the same images.
    Occluders stand in the capture volume (radius 1.6 m around the origin) at least 0.35 m (plus their own size)
    from the person's pelvis, so they hide parts of the body in some views only.
    """
    X = joints_3d_m.detach().to("cpu", torch.float32)
    B = X.shape[0]
    per_frame = []
    for i in range(B):  # tiny per-frame draws on the CPU (no pixels here)
        g = torch.Generator().manual_seed(int(seed) * 1_000_003 + i)
        per_frame.append(torch.rand(64, generator=g))
    u = torch.stack(per_frame) if B else torch.zeros(0, 64)  # (B, 64) uniforms

    a, b, r = body_primitives(X)
    # clothes: hue-ish random colours; sleeves are shirt or skin
    def colour(k):  # (B, 3) from three uniforms
        return 0.15 + 0.8 * u[:, k:k + 3]
    shirt, pants, shoes = colour(0), colour(3), 0.1 + 0.3 * u[:, 6:9]
    skin = torch.stack([0.55 + 0.4 * u[:, 9], 0.4 + 0.3 * u[:, 9], 0.3 + 0.25 * u[:, 9]], -1)
    long_sleeves = u[:, 10:11] < 0.5
    parts = torch.stack([shirt, skin, pants, shoes, skin], 1)  # (B, 5, 3)
    rgb = []
    for _, _, _, _, part, side in BODY_PRIMITIVES:
        c = torch.where(long_sleeves, shirt, skin) if part == "sleeve" else parts[:, part]
        rgb.append(c * (LEFT_SHADE if side == 1 else 1.0))
    body_rgb = torch.stack(rgb, 1)  # (B, NUM_BODY, 3)

    pelvis_xy = X[:, 0, :2]

    def place(k, clearance):  # an occluder spot in the volume away from the pelvis, (B, 2), and whether it is valid
        # a few candidates per frame; take the first one far enough from the person
        ang = 2 * math.pi * u[:, k:k + 4]
        rad = 1.6 * u[:, k + 4:k + 8].sqrt()
        xy = torch.stack([rad * ang.cos(), rad * ang.sin()], -1)  # (B, 4, 2)
        ok = (xy - pelvis_xy[:, None]).norm(dim=-1) > 0.35 + clearance[:, None]
        first = torch.where(ok.any(1), ok.float().argmax(1), torch.zeros(B, dtype=torch.long))
        return xy[torch.arange(B), first], ok.any(1)

    box_c, box_e, box_yaw, box_on, box_rgb = [], [], [], [], []
    for k in range(MAX_BOXES):
        o = 12 + 12 * k
        e = torch.stack([0.15 + 0.35 * u[:, o], 0.1 + 0.25 * u[:, o + 1], 0.2 + 0.45 * u[:, o + 2]], -1)
        xy, ok = place(o + 3, e[:, :2].norm(dim=-1))
        box_c.append(torch.cat([xy, e[:, 2:3]], -1))  # standing on the floor
        box_e.append(e)
        box_yaw.append(math.pi * u[:, o + 11])
        box_on.append(ok & (u[:, 60 + k] < 0.6))
        box_rgb.append(0.2 + 0.7 * torch.stack([u[:, o], u[:, o + 11], u[:, o + 2]], -1).flip(-1))
    pil_a, pil_b, pil_r, pil_on, pil_rgb = [], [], [], [], []
    for k in range(MAX_PILLARS):
        o = 36 + 12 * k
        radius = 0.08 + 0.12 * u[:, o]
        height = 0.8 + 1.4 * u[:, o + 1]
        xy, ok = place(o + 2, radius)
        pil_a.append(torch.cat([xy, -radius[:, None]], -1))
        pil_b.append(torch.cat([xy, (height - radius)[:, None]], -1))
        pil_r.append(radius)
        pil_on.append(ok & (u[:, 62 + k] < 0.4))
        pil_rgb.append(0.2 + 0.7 * u[:, o + 10:o + 11].expand(B, 3) * torch.tensor([1.0, 0.85, 0.7]))

    cap_a = torch.cat([a, torch.stack(pil_a, 1)], 1)
    cap_b = torch.cat([b, torch.stack(pil_b, 1)], 1)
    cap_r = torch.cat([r.expand(B, NUM_BODY), torch.stack(pil_r, 1)], 1)
    pil_on_t = torch.stack(pil_on, 1)
    cap_on = torch.cat([torch.ones(B, NUM_BODY, dtype=torch.bool), pil_on_t], 1)
    cap_r = torch.where(cap_on, cap_r, torch.zeros_like(cap_r))
    cap_rgb = torch.cat([body_rgb, torch.stack(pil_rgb, 1)], 1)

    elev = math.radians(35) + math.radians(40) * u[:, 56]
    azim = 2 * math.pi * u[:, 57]
    light = torch.stack([elev.cos() * azim.cos(), elev.cos() * azim.sin(), elev.sin()], -1)
    floor_rgb = torch.stack([0.25 + 0.6 * u[:, 12:15].flip(-1), 0.25 + 0.6 * u[:, 24:27].flip(-1)], 1)
    wall_rgb = torch.stack([0.3 + 0.6 * u[:, 36:39].flip(-1), 0.3 + 0.6 * u[:, 48:51].flip(-1)], 1)
    tex = torch.stack([0.3 + 0.6 * u[:, 58], 0.15 + 0.6 * u[:, 59], (u[:, 55] < 0.5).float(), 0.05 + 0.15 * u[:, 54],
                       torch.floor(1000 * u[:, 53])], -1)
    return Scene(cap_a=cap_a, cap_b=cap_b, cap_r=cap_r, cap_on=cap_on, cap_rgb=cap_rgb,
                 box_c=torch.stack(box_c, 1), box_e=torch.stack(box_e, 1), box_yaw=torch.stack(box_yaw, 1),
                 box_on=torch.stack(box_on, 1), box_rgb=torch.stack(box_rgb, 1), light=light,
                 ambient=0.3 + 0.15 * u[:, 63],
                 floor_rgb=floor_rgb, wall_rgb=wall_rgb, tex=tex)
