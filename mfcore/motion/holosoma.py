"""The holosoma climbing mocap (53 points, Z up): mapping to the 17 H36M joints and removal of the climbing boxes'
support height."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .archives import _Archive
from .kinematics import _forward, _stack_h36m, _unit

# Indices into the 53 points of holosoma's MOCAP_DEMO_JOINTS (config_types/data_type.py).
HOLOSOMA_POINTS = {
    "Hips": 0, "Spine": 1, "Spine1": 2, "Neck": 3, "Head": 4,
    "LeftShoulder": 5, "LeftArm": 6, "LeftForeArm": 7, "LeftHand": 8,
    "RightShoulder": 24, "RightArm": 25, "RightForeArm": 26, "RightHand": 27,
    "LeftUpLeg": 43, "LeftLeg": 44, "LeftFoot": 45, "LeftToeBase": 46,
    "RightUpLeg": 47, "RightLeg": 48, "RightFoot": 49, "RightToeBase": 50,
}
HOLOSOMA_FPS = 30.0


def _holosoma_to_h36m(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T,53,3) holosoma mocap points (Z up) → (T,17,3) H36M joints and (T,4,3) foot points."""
    p = {name: points[:, i].astype(np.float64) for name, i in HOLOSOMA_POINTS.items()}
    head_axis = _unit(p["Head"] - p["Neck"])
    forward = _forward(head_axis, p["LeftArm"] - p["RightArm"])
    out = {
        "left_hip": p["LeftUpLeg"], "left_knee": p["LeftLeg"], "left_ankle": p["LeftFoot"],
        "right_hip": p["RightUpLeg"], "right_knee": p["RightLeg"], "right_ankle": p["RightFoot"],
        "spine": p["Spine"] + 0.6 * (p["Spine1"] - p["Spine"]),
        "thorax": 0.5 * (p["LeftShoulder"] + p["RightShoulder"]),
        "nose": p["Head"] + 0.03 * head_axis + 0.10 * forward,
        "head_top": p["Head"] + 0.16 * head_axis,
        "left_shoulder": p["LeftArm"], "left_elbow": p["LeftForeArm"], "left_wrist": p["LeftHand"],
        "right_shoulder": p["RightArm"], "right_elbow": p["RightForeArm"], "right_wrist": p["RightHand"],
    }
    out["pelvis"] = 0.5 * (out["left_hip"] + out["right_hip"])
    feet = np.stack([p["LeftFoot"], p["LeftToeBase"], p["RightFoot"], p["RightToeBase"]], 1)
    return _stack_h36m(out), feet


def _remove_support_height(joints: np.ndarray, soles: np.ndarray, fps: float, window_s: float = 0.5):
    """Lower every frame by the height of what the feet stand on (moving minimum of the lowest foot over ±window)."""
    lowest = soles[..., 2].min(-1)  # (T,)
    half = int(round(window_s * fps))
    padded = np.pad(lowest, half, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    support = windows.min(-1) - lowest.min()  # (T,)
    support = np.minimum(support, joints[..., 2].min(-1) - lowest.min())  # no body point goes below the floor
    shift = np.stack([np.zeros_like(support), np.zeros_like(support), support], -1)[:, None, :]
    return joints - shift, soles - shift


def _load_holosoma(archive: _Archive) -> list[dict]:
    names = sorted(
        n for n in archive.names if "/demo_data/climb/" in n and "_joint_positions_" in n and n.endswith(".npy")
    )
    clips = []
    for member in names:
        points = np.load(io.BytesIO(archive.read(member)), allow_pickle=False)
        if points.ndim != 3 or points.shape[1:] != (53, 3):
            raise ValueError(f"{member}: expected (T, 53, 3), got {points.shape}")
        joints, feet = _holosoma_to_h36m(points)
        joints, feet = _remove_support_height(joints, feet, HOLOSOMA_FPS)
        clip = Path(member).parent.name
        clips.append(dict(source="holosoma", clip=clip, fps=HOLOSOMA_FPS, joints=joints, soles=feet))
    return clips
