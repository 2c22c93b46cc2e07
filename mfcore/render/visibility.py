"""The depth-test visibility of every joint in every view.

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

import torch

from .body import NUM_BODY, OWN_PRIMITIVES
from .rays import NEAR_M, nearest_hits
from .scene import Scene

Tensor = torch.Tensor

OCCLUSION_MARGIN_M = 0.02


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
