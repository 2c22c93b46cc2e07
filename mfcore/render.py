"""A batched ray-casting renderer in pure torch for the synthetic capture studio (GPU for the book, CPU for smoke tests).

Scene of one frame (all drawn per frame from a seed by :func:`sample_scene`):

* **body**: capsules along the skeleton (limbs, torso block, neck) and spheres or short capsules for the head, hands
  and feet (:data:`BODY_PRIMITIVES`). Left and right limbs have the same geometry and the same colour up to a subtle
  2% shade, so left/right confusion is a real failure mode; limbs hide one another (self-occlusion).
* **occluders**: up to :data:`MAX_BOXES` boxes (turned about Z) and :data:`MAX_PILLARS` pillars (vertical capsules)
  standing in the capture volume away from the person, so a joint hidden in one view is visible in others.
* **room**: a textured floor (tiles + block noise) and walls (stripes + block noise), seeded colours.
* **light**: Lambert shading from one directional light plus ambient.

Every camera ray is intersected analytically with every primitive at once (ray-capsule, ray-box, ray-room), as
tensors (B, V, N, P) over frames, views, pixels and primitives, in chunks of frames that fit a memory budget.

**Visibility rule** (:func:`joint_visibility`): a joint is *visible* in a view when it projects inside the image in
front of the camera and the nearest surface along the ray from the camera centre through the joint (body or
occluder) is no nearer than the ray's entry into the joint's *own* primitives (those attached to the joint, e.g. upper
arm and forearm for the elbow) minus :data:`OCCLUSION_MARGIN_M`. So a wrist behind the torso is occluded, while a
wrist seen through the surface of its own forearm is visible.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from . import skeleton

Tensor = torch.Tensor

OCCLUSION_MARGIN_M = 0.02
NEAR_M = 0.05  # hits nearer than this to the camera are ignored
ROOM_HALF_SIZE_M = 7.0  # the room: |x|, |y| <= 7 m, 0 <= z <= ROOM_HEIGHT_M
ROOM_HEIGHT_M = 5.0
MAX_BOXES = 2
MAX_PILLARS = 2
LEFT_SHADE = 0.98  # left limbs are 2% darker than right ones: a subtle cue at most

# parts (colour classes)
SHIRT, SKIN, PANTS, SHOES, HAIR = range(5)
PART_NAMES = ("shirt", "skin", "pants", "shoes", "hair")

J = skeleton.JOINT_INDEX
# (name, first endpoint, second endpoint, radius_m, part, side) — endpoints are joint indices or derived points
# ("head_c", "hand_l", …) computed in body_primitives; a sphere has equal endpoints. side: +1 left, -1 right, 0 centre.
BODY_PRIMITIVES: tuple[tuple, ...] = (
    ("abdomen", J["pelvis"], J["spine"], 0.12, SHIRT, 0),
    ("chest", J["spine"], J["thorax"], 0.13, SHIRT, 0),
    ("hip_bar", J["left_hip"], J["right_hip"], 0.10, PANTS, 0),
    ("shoulder_bar", J["left_shoulder"], J["right_shoulder"], 0.07, SHIRT, 0),
    ("left_flank", J["left_hip"], J["left_shoulder"], 0.085, SHIRT, 1),
    ("right_flank", J["right_hip"], J["right_shoulder"], 0.085, SHIRT, -1),
    ("neck", J["thorax"], "neck_top", 0.055, SKIN, 0),
    ("head", "head_low", "head_high", 0.10, SKIN, 0),
    ("left_upper_arm", J["left_shoulder"], J["left_elbow"], 0.05, SHIRT, 1),
    ("right_upper_arm", J["right_shoulder"], J["right_elbow"], 0.05, SHIRT, -1),
    ("left_forearm", J["left_elbow"], J["left_wrist"], 0.04, "sleeve", 1),
    ("right_forearm", J["right_elbow"], J["right_wrist"], 0.04, "sleeve", -1),
    ("left_hand", "hand_l", "hand_l", 0.045, SKIN, 1),
    ("right_hand", "hand_r", "hand_r", 0.045, SKIN, -1),
    ("left_thigh", J["left_hip"], J["left_knee"], 0.07, PANTS, 1),
    ("right_thigh", J["right_hip"], J["right_knee"], 0.07, PANTS, -1),
    ("left_shin", J["left_knee"], J["left_ankle"], 0.05, PANTS, 1),
    ("right_shin", J["right_knee"], J["right_ankle"], 0.05, PANTS, -1),
    ("left_foot", J["left_ankle"], "toe_l", 0.04, SHOES, 1),
    ("right_foot", J["right_ankle"], "toe_r", 0.04, SHOES, -1),
)
NUM_BODY = len(BODY_PRIMITIVES)
NUM_CAPSULES = NUM_BODY + MAX_PILLARS  # pillars are capsules after the body ones
BODY_NAMES = tuple(p[0] for p in BODY_PRIMITIVES)


def _own_primitives() -> Tensor:
    """(J, NUM_BODY) bool: the primitives attached to each joint (the joint is an endpoint or drives a derived one)."""
    derived_owner = {"neck_top": (J["thorax"],), "head_low": (J["nose"], J["head_top"]),
                     "head_high": (J["nose"], J["head_top"]), "hand_l": (J["left_wrist"],),
                     "hand_r": (J["right_wrist"],), "toe_l": (J["left_ankle"],), "toe_r": (J["right_ankle"],)}
    own = torch.zeros(skeleton.NUM_JOINTS, NUM_BODY, dtype=torch.bool)
    for p, (_, a, b, _, _, _) in enumerate(BODY_PRIMITIVES):
        for end in (a, b):
            for j in (derived_owner[end] if isinstance(end, str) else (end,)):
                own[j, p] = True
    return own


OWN_PRIMITIVES = _own_primitives()


def _unit(v: Tensor, eps: float = 1e-8) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


def body_primitives(joints_3d_m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Capsule endpoints of the body for poses (B, J, 3) → a (B, P, 3), b (B, P, 3), radius_m (P,).

    Derived points: the head is a short vertical-ish capsule between nose and head top, set back from the nose; hands
    are spheres just beyond the wrists; feet are capsules from the ankle 14 cm forward (the facing direction, from
    the hips) and 5 cm down.
    """
    X = joints_3d_m
    up = torch.tensor([0.0, 0.0, 1.0], dtype=X.dtype, device=X.device)
    right = X[:, J["right_hip"]] - X[:, J["left_hip"]]
    forward = _unit(torch.linalg.cross(up.expand_as(right), right))  # (B, 3), horizontal
    head_axis = _unit(X[:, J["head_top"]] - X[:, J["thorax"]])
    nose, top = X[:, J["nose"]], X[:, J["head_top"]]
    head_mid = 0.5 * (nose + top) - 0.03 * forward
    derived = {
        "neck_top": X[:, J["thorax"]] + 0.4 * (X[:, J["nose"]] - X[:, J["thorax"]]),
        "head_low": head_mid - 0.025 * head_axis,
        "head_high": head_mid + 0.025 * head_axis,
        "hand_l": X[:, J["left_wrist"]] + 0.06 * _unit(X[:, J["left_wrist"]] - X[:, J["left_elbow"]]),
        "hand_r": X[:, J["right_wrist"]] + 0.06 * _unit(X[:, J["right_wrist"]] - X[:, J["right_elbow"]]),
        "toe_l": X[:, J["left_ankle"]] + 0.14 * forward - 0.05 * up,
        "toe_r": X[:, J["right_ankle"]] + 0.14 * forward - 0.05 * up,
    }

    def point(end):
        return derived[end] if isinstance(end, str) else X[:, end]

    a = torch.stack([point(p[1]) for p in BODY_PRIMITIVES], dim=1)
    b = torch.stack([point(p[2]) for p in BODY_PRIMITIVES], dim=1)
    r = torch.tensor([p[3] for p in BODY_PRIMITIVES], dtype=X.dtype, device=X.device)
    return a, b, r


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
    tex: Tensor  # (B, 5): tile size m, stripe period m, stripes horizontal (1) or vertical (0), noise amplitude, noise salt

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
                 box_on=torch.stack(box_on, 1), box_rgb=torch.stack(box_rgb, 1), light=light, ambient=0.3 + 0.15 * u[:, 63],
                 floor_rgb=floor_rgb, wall_rgb=wall_rgb, tex=tex)


# ----------------------------------------------------------------------------------------------------------------------
# ray intersections, batched over frames B, views V, rays N and primitives


def _capsule_hits(origin: Tensor, dirs: Tensor, scene: Scene) -> Tensor:
    """Ray-capsule distances (B, V, N, C) (inf where missed). origin (V, 3); dirs (B or 1, V, N, 3) unit.

    For a capsule a→b of radius r, the ray first meets the infinite cylinder (a quadratic in t); if that point lies
    between the end planes it is the hit, else the ray is tested against the sphere at the nearer end.
    Spheres are capsules with a = b.
    """
    a, b, r = scene.cap_a, scene.cap_b, scene.cap_r  # (B, C, 3), (B, C, 3), (B, C)
    ba = b - a
    oa = origin[None, :, None, :] - a[:, None]  # (B, V, C, 3)
    baba = (ba * ba).sum(-1)[:, None, None, :]  # (B, 1, 1, C)
    baoa = torch.einsum("bck,bvck->bvc", ba, oa)[:, :, None, :]  # (B, V, 1, C)
    oaoa = (oa * oa).sum(-1)
    ob = oa - ba[:, None]
    r2 = (r * r)[:, None, :]  # (B, 1, C)
    # c = |ba × oa|² − r² |ba|² without cancellation; cap constants |o − end|² − r²
    cyl_c = (torch.linalg.cross(ba[:, None].expand_as(oa), oa) ** 2).sum(-1) - r2 * baba[:, 0]  # (B, V, C)
    cap_a_c = (oaoa - r2)[:, :, None, :]
    cap_b_c = ((ob * ob).sum(-1) - r2)[:, :, None, :]
    if dirs.shape[0] == 1:  # the same pixel rays for every frame: one matmul per view
        bard = torch.einsum("vnk,bck->bvnc", dirs[0], ba)  # (B, V, N, C)
    else:
        bard = torch.einsum("bvnk,bck->bvnc", dirs, ba)
    rdoa = torch.einsum("bvnk,bvck->bvnc", dirs.expand(b.shape[0], -1, -1, -1), oa)
    qa = (baba - bard * bard).clamp_min(1e-9)
    qb = baba * rdoa - baoa * bard
    h = qb * qb - qa * cyl_c[:, :, None, :]
    t_body = (-qb - h.clamp_min(0).sqrt()) / qa
    y = baoa + t_body * bard
    body_hit = (h >= 0) & (y > 0) & (y < baba)
    use_a = y <= 0
    cb = torch.where(use_a, rdoa, rdoa - bard)
    hc = cb * cb - torch.where(use_a, cap_a_c, cap_b_c)
    t_cap = -cb - hc.clamp_min(0).sqrt()
    t = torch.where(body_hit, t_body, torch.where(hc >= 0, t_cap, torch.full_like(t_cap, math.inf)))
    on = scene.cap_on[:, None, None, :]
    return torch.where(on & (t > NEAR_M), t, torch.full_like(t, math.inf))


def _box_frame(origin: Tensor, dirs: Tensor, scene: Scene):
    """Ray origins and directions in each box's frame: o (B, V, 1, K, 3), d (B, V, N, K, 3)."""
    cy, sy = scene.box_yaw.cos(), scene.box_yaw.sin()  # (B, K)
    o = origin[None, :, None, :] - scene.box_c[:, None]  # (B, V, K, 3)
    ox = cy[:, None] * o[..., 0] + sy[:, None] * o[..., 1]
    oy = -sy[:, None] * o[..., 0] + cy[:, None] * o[..., 1]
    o_box = torch.stack([ox, oy, o[..., 2]], -1)[:, :, None]  # (B, V, 1, K, 3)
    d = dirs[..., None, :]  # (B|1, V, N, 1, 3)
    cy5, sy5 = cy[:, None, None, :], sy[:, None, None, :]
    dx = cy5 * d[..., 0] + sy5 * d[..., 1]
    dy = -sy5 * d[..., 0] + cy5 * d[..., 1]
    dz = d[..., 2].expand_as(dx)
    return o_box, torch.stack([dx, dy, dz], -1)


def _box_hits(origin: Tensor, dirs: Tensor, scene: Scene) -> tuple[Tensor, Tensor]:
    """Ray-box (slab test) distances (B, V, N, K) and the hit face's axis (B, V, N, K) in the box frame."""
    o, d = _box_frame(origin, dirs, scene)
    d = torch.where(d.abs() < 1e-9, torch.full_like(d, 1e-9), d)
    inv = 1.0 / d
    e = scene.box_e[:, None, None]  # (B, 1, 1, K, 3)
    t1, t2 = (-e - o) * inv, (e - o) * inv
    near, axis = torch.minimum(t1, t2).max(-1)
    far = torch.maximum(t1, t2).amin(-1)
    hit = (near <= far) & (near > NEAR_M) & scene.box_on[:, None, None, :]
    return torch.where(hit, near, torch.full_like(near, math.inf)), axis


def _room_hits(origin: Tensor, dirs: Tensor) -> tuple[Tensor, Tensor]:
    """Exit distance of rays from inside the room box (V, N) and the face: 0 floor, 1 ceiling, 2 walls x, 3 walls y."""
    lo = torch.tensor([-ROOM_HALF_SIZE_M, -ROOM_HALF_SIZE_M, 0.0], device=dirs.device, dtype=dirs.dtype)
    hi = torch.tensor([ROOM_HALF_SIZE_M, ROOM_HALF_SIZE_M, ROOM_HEIGHT_M], device=dirs.device, dtype=dirs.dtype)
    d = torch.where(dirs.abs() < 1e-9, torch.full_like(dirs, 1e-9), dirs)
    o = origin[:, None, :]
    t = torch.where(d > 0, (hi - o) / d, (lo - o) / d)  # (V, N, 3)
    t_exit, axis = t.min(-1)
    up = d[..., 2] > 0
    face = torch.where(axis == 2, torch.where(up, 1, 0), axis + 2)
    return t_exit, face


def _hash(ix: Tensor, iy: Tensor, salt: Tensor) -> Tensor:
    """A cheap deterministic hash of integer lattice coordinates → [0, 1)."""
    v = torch.sin(ix * 12.9898 + iy * 78.233 + salt * 37.719) * 43758.5453
    return v - v.floor()


# ----------------------------------------------------------------------------------------------------------------------
# rendering


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


def _shade_chunk(origin: Tensor, dirs: Tensor, room_t: Tensor, room_face: Tensor, s: Scene) -> Tensor:
    """Colours (B, V, N, 3) of the pixel rays dirs (1, V, N, 3) for the frames of scene ``s``."""
    B = s.num_frames
    t_cap = _capsule_hits(origin, dirs, s)  # (B, V, N, C)
    t_c, i_c = t_cap.min(-1)  # (B, V, N)
    t_bx, axis = _box_hits(origin, dirs, s)  # (B, V, N, K)
    t_b, i_b = t_bx.min(-1)
    d = dirs[0]  # (V, N, 3)
    L = s.light[:, None, None, :]  # (B, 1, 1, 3)
    amb = s.ambient[:, None, None, None]

    # capsule surface: normal from the nearest point of the segment
    p = origin[None, :, None, :] + t_c.clamp(max=1e3)[..., None] * d[None]  # (B, V, N, 3)
    gi = i_c.reshape(B, -1)[..., None].expand(-1, -1, 3)
    ga = torch.gather(s.cap_a, 1, gi).reshape(p.shape)
    gb = torch.gather(s.cap_b, 1, gi).reshape(p.shape)
    gab = gb - ga
    w = (((p - ga) * gab).sum(-1, keepdim=True) / (gab * gab).sum(-1, keepdim=True).clamp_min(1e-12)).clamp(0, 1)
    n_c = _unit(p - (ga + w * gab))
    rgb_c = torch.gather(s.cap_rgb, 1, gi).reshape(p.shape)
    col_c = rgb_c * (amb + (1 - amb) * (n_c * L).sum(-1, keepdim=True).clamp_min(0))

    # box surface: the normal is the slab axis, facing the camera, turned back to the world
    ax = torch.gather(axis, -1, i_b[..., None])[..., 0]  # (B, V, N)
    yaw = torch.gather(s.box_yaw, 1, i_b.reshape(B, -1)).reshape(ax.shape)
    cy, sy = yaw.cos(), yaw.sin()
    dx = cy * d[None, ..., 0] + sy * d[None, ..., 1]
    dy = -sy * d[None, ..., 0] + cy * d[None, ..., 1]
    nxl = torch.where(ax == 0, -torch.sign(dx), torch.zeros_like(dx))
    nyl = torch.where(ax == 1, -torch.sign(dy), torch.zeros_like(dy))
    nz = torch.where(ax == 2, -torch.sign(d[None, ..., 2]).expand_as(dx), torch.zeros_like(dx))
    n_b = torch.stack([cy * nxl - sy * nyl, sy * nxl + cy * nyl, nz], -1)
    rgb_b = torch.gather(s.box_rgb, 1, i_b.reshape(B, -1)[..., None].expand(-1, -1, 3)).reshape(n_b.shape)
    col_b = rgb_b * (amb + (1 - amb) * (n_b * L).sum(-1, keepdim=True).clamp_min(0))

    # room: floor tiles or wall stripes, block noise, Lambert with the face's inward normal
    q = origin[:, None, :] + room_t[..., None] * d  # (V, N, 3)
    tile = s.tex[:, 0, None, None]
    stripe = s.tex[:, 1, None, None]
    checker = ((torch.floor(q[None, ..., 0] / tile) + torch.floor(q[None, ..., 1] / tile)) % 2)  # (B, V, N)
    along = torch.where(room_face == 2, q[..., 1], q[..., 0])  # horizontal coordinate on the wall
    coord = torch.where(s.tex[:, 2, None, None] > 0.5, q[None, ..., 2], along[None])
    stripes = (torch.floor(coord / stripe) % 2)
    is_floor = (room_face == 0)[None]
    mix = torch.where(is_floor, checker, stripes)[..., None]  # (B, V, N, 1)
    base = torch.where(is_floor[..., None], s.floor_rgb[:, None, None, 0] * (1 - mix) + s.floor_rgb[:, None, None, 1] * mix,
                       s.wall_rgb[:, None, None, 0] * (1 - mix) + s.wall_rgb[:, None, None, 1] * mix)
    u_tex = torch.where(room_face <= 1, q[..., 0], along)
    v_tex = torch.where(room_face <= 1, q[..., 1], q[..., 2])
    salt = s.tex[:, 4, None, None]
    noise = _hash(torch.floor(u_tex / 0.1)[None], torch.floor(v_tex / 0.1)[None], salt) - 0.5  # (B, V, N)
    base = base * (1 + s.tex[:, 3, None, None, None] * 2 * noise[..., None])
    sign = torch.where(d.gather(-1, (room_face.clamp(min=2) - 2)[..., None])[..., 0] > 0, -1.0, 1.0)
    n_room = torch.stack([torch.where(room_face == 2, sign, 0.0), torch.where(room_face == 3, sign, 0.0),
                          torch.where(room_face == 0, 1.0, torch.where(room_face == 1, -1.0, 0.0))], -1)  # (V, N, 3)
    col_r = base * (amb + (1 - amb) * (n_room[None] * L).sum(-1, keepdim=True).clamp_min(0))

    cap_first = (t_c <= t_b)[..., None]
    hit_any = (torch.minimum(t_c, t_b) < room_t[None])[..., None]
    col = torch.where(hit_any, torch.where(cap_first, col_c, col_b), col_r)
    return col.clamp(0, 1)


def _chunk_frames(num_views: int, num_rays: int, device: torch.device) -> int:
    budget_bytes = (6 << 30) if device.type == "cuda" else (256 << 20)
    per_frame = 4 * 24 * num_views * num_rays * (NUM_CAPSULES + MAX_BOXES * 3)  # ~24 live float temporaries
    return max(1, int(budget_bytes // per_frame))


def render_images(scene: Scene, K: Tensor, R: Tensor, t: Tensor, image_px: int,
                  chunk_frames: int | None = None) -> Tensor:
    """Render every frame of ``scene`` in every view: K, R (V, 3, 3), t (V, 3) on the scene's device →
    images (B, V, 3, H, W) float32 in [0, 1]. Frames go ``chunk_frames`` at a time (default: what fits a memory
    budget of 6 GiB on CUDA, 256 MiB on the CPU)."""
    dev = scene.cap_a.device
    origin, dirs = pixel_rays(K.to(dev, torch.float32), R.to(dev, torch.float32), t.to(dev, torch.float32), image_px)
    room_t, room_face = _room_hits(origin, dirs)
    V, N = dirs.shape[:2]
    B = scene.num_frames
    out = torch.empty(B, V, 3, image_px, image_px, device=dev)
    step = chunk_frames or _chunk_frames(V, N, dev)
    for s in range(0, B, step):
        col = _shade_chunk(origin, dirs[None], room_t, room_face, scene.frames(slice(s, s + step)))  # (b, V, N, 3)
        out[s:s + step] = col.permute(0, 1, 3, 2).reshape(-1, V, 3, image_px, image_px)
    return out


def joint_visibility(scene: Scene, joints_3d_m: Tensor, centres_m: Tensor) -> Tensor:
    """Depth-test visibility (B, V, J) bool of every joint from every camera centre (V, 3) (see the module rule).

    Does not check the image bounds (see :func:`mfcore.data.render_multiview`)."""
    X = joints_3d_m.to(scene.cap_a)
    C = centres_m.to(X)
    ray = X[:, None] - C[None, :, None]  # (B, V, J, 3)
    t_joint = ray.norm(dim=-1)
    dirs = ray / t_joint[..., None]
    t_cap = _capsule_hits(C, dirs, scene)  # (B, V, J, Ccap)
    t_box, _ = _box_hits(C, dirs, scene)
    t_first = torch.minimum(t_cap.amin(-1), t_box.amin(-1))
    own = OWN_PRIMITIVES.to(X.device)  # (J, NUM_BODY)
    t_own = torch.where(own[None, None], t_cap[..., :NUM_BODY], torch.full_like(t_cap[..., :NUM_BODY], math.inf)).amin(-1)
    t_ref = torch.minimum(t_own, t_joint)
    return (t_first >= t_ref - OCCLUSION_MARGIN_M) & (t_joint > NEAR_M)
