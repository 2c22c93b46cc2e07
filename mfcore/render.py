"""A batched ray-casting renderer in pure torch for the synthetic capture studio (GPU for the book, CPU for smoke).

Scene of one frame (all drawn per frame from a seed by :func:`sample_scene`):

* **body**: capsules along the skeleton (limbs, torso block, neck) and spheres or short capsules for the head, hands
  and feet (:data:`BODY_PRIMITIVES`). Left and right limbs have the same geometry and the same colour up to a subtle
  2% shade, so left/right confusion is a real failure mode; limbs hide one another (self-occlusion).
* **occluders**: up to :data:`MAX_BOXES` boxes (turned about Z) and :data:`MAX_PILLARS` pillars (vertical capsules)
  standing in the capture volume away from the person, so a joint hidden in one view is visible in others.
* **room**: a textured floor (tiles + block noise) and walls (stripes + block noise), seeded colours.
* **light**: Lambert shading from one directional light plus ambient.

Rays are intersected analytically (ray-capsule, ray-box, ray-room) and batched as tensors. Pixel rays are culled by
tiles: each primitive's conservative screen rectangle selects the (frame, view, primitive, tile) quadruples that can
hit, every such quadruple tests all pixels of its tile at once, and a scatter-min keeps the nearest surface per
pixel (identical to testing every primitive against every pixel, as ``tests/test_render.py`` checks). Surfaces are
shaded only where they are hit; frames go in chunks that fit a memory budget. All arithmetic is float32 (the ray-
capsule quadratic loses centimetres in half precision); on one H200 the renderer draws about 23,000 images/s at 256²
(``benchmarks/bench_render.py``).

**Visibility rule** (:func:`joint_visibility`): a joint is *visible* in a view when it projects inside the image in
front of the camera and the nearest surface along the ray from the camera centre through the joint (body or
occluder) is no nearer, by more than :data:`OCCLUSION_MARGIN_M`, than the nearer of the joint itself and the ray's
entry into the joint's *own* primitives (those attached to it: upper arm and forearm for the elbow; the whole torso
for pelvis, spine and thorax; the head for the head top; none for the nose, which sits on the head's surface). So a
wrist behind the torso is occluded, a wrist seen through the surface of its own forearm is visible, and the nose is
hidden by the back of the head.
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
    ("head", "head_low", "head_high", 0.095, SKIN, 0),
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
TORSO = ("abdomen", "chest", "hip_bar", "shoulder_bar", "left_flank", "right_flank")


def _own_primitives() -> Tensor:
    """(J, NUM_BODY) bool: the primitives attached to each joint (the joint is an endpoint or drives a derived one)."""
    derived_owner = {"neck_top": (J["thorax"],), "head_low": (J["head_top"],), "head_high": (J["head_top"],),
                     "hand_l": (J["left_wrist"],),
                     "hand_r": (J["right_wrist"],), "toe_l": (J["left_ankle"],), "toe_r": (J["right_ankle"],)}
    own = torch.zeros(skeleton.NUM_JOINTS, NUM_BODY, dtype=torch.bool)
    for p, (_, a, b, _, _, _) in enumerate(BODY_PRIMITIVES):
        for end in (a, b):
            for j in (derived_owner[end] if isinstance(end, str) else (end,)):
                own[j, p] = True
    torso = [BODY_NAMES.index(n) for n in TORSO]
    for j in (J["pelvis"], J["spine"], J["thorax"]):  # the joints inside the torso belong to all of it
        own[j, torso] = True
    return own


OWN_PRIMITIVES = _own_primitives()


def _unit(v: Tensor, eps: float = 1e-8) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(eps)


def body_primitives(joints_3d_m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Capsule endpoints of the body for poses (B, J, 3) → a (B, P, 3), b (B, P, 3), radius_m (P,).

    Derived points: the head is a short capsule on the thorax→head-top axis (60-74% of the way, radius 9.5 cm:
    its crown is the head top and the nose, about 10 cm in front of that axis in the motion data, is on its surface);
    hands are spheres just beyond the wrists; feet are capsules from the ankle 14 cm forward (the facing direction,
    from the hips) and 5 cm down.
    """
    X = joints_3d_m
    up = torch.tensor([0.0, 0.0, 1.0], dtype=X.dtype, device=X.device)
    right = X[:, J["right_hip"]] - X[:, J["left_hip"]]
    forward = _unit(torch.linalg.cross(up.expand_as(right), right))  # (B, 3), horizontal
    neck_to_top = X[:, J["head_top"]] - X[:, J["thorax"]]
    derived = {
        "neck_top": X[:, J["thorax"]] + 0.45 * neck_to_top,
        "head_low": X[:, J["thorax"]] + 0.60 * neck_to_top,
        "head_high": X[:, J["thorax"]] + 0.74 * neck_to_top,
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


# ----------------------------------------------------------------------------------------------------------------------
# ray intersections: elementwise formulas shared by the dense (joint rays) and the tiled (pixel rays) paths


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


def joint_visibility(scene: Scene, joints_3d_m: Tensor, centres_m: Tensor) -> Tensor:
    """Depth-test visibility (B, V, J) bool of every joint from every camera centre (V, 3) (see the module's rule).

    Image bounds are not checked here (see :func:`mfcore.data.render_multiview`)."""
    X = joints_3d_m.to(scene.cap_a)
    C = centres_m.to(X)
    ray = X[:, None] - C[None, :, None]  # (B, V, J, 3)
    t_joint = ray.norm(dim=-1)
    t_cap, t_box = nearest_hits(C, ray / t_joint[..., None], scene)
    t_first = torch.minimum(t_cap.amin(-1), t_box.amin(-1))
    own = OWN_PRIMITIVES.to(X.device)[None, None]  # (1, 1, J, NUM_BODY)
    body = t_cap[..., :NUM_BODY]
    t_own = torch.where(own, body, torch.full_like(body, math.inf)).amin(-1)
    t_ref = torch.minimum(t_own, t_joint)
    return (t_first >= t_ref - OCCLUSION_MARGIN_M) & (t_joint > NEAR_M)


# ----------------------------------------------------------------------------------------------------------------------
# rendering: tiles of pixels × primitives whose screen bound touches the tile


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
