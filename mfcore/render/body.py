"""The body as capsules and spheres on the 17-joint skeleton (:data:`BODY_PRIMITIVES`), their colour classes, and the
primitives each joint owns (for the visibility rule)."""

from __future__ import annotations

import torch

from .. import skeleton

Tensor = torch.Tensor

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
