"""The DeepMimic clips of the pybullet wheel: URDF parsing, forward kinematics of the humanoid and its mapping to the 17
H36M joints (source frame Y up, turned to Z up)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from .archives import _Archive
from .kinematics import _axis_rotation, _quat_wxyz_to_matrix, _stack_h36m

DEEPMIMIC_URDF_SCALE = 0.25  # pybullet's DeepMimic env loads humanoid.urdf with globalScaling=0.25
# Joint order of a DeepMimic humanoid frame after (duration, root xyz, root quaternion): spherical joints take a
# quaternion (w, x, y, z), revolute joints (knees, elbows) one angle in radians.
DEEPMIMIC_FRAME_JOINTS = (
    "chest", "neck", "right_hip", "right_knee", "right_ankle", "right_shoulder", "right_elbow",
    "left_hip", "left_knee", "left_ankle", "left_shoulder", "left_elbow",
)
# (x forward, y up, z right) → (x forward, y left, z up), a proper rotation
Y_UP_TO_Z_UP_DEEPMIMIC = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


def _parse_urdf(xml_bytes: bytes, scale: float) -> dict:
    """URDF joints {name: parent joint (or None), type, origin offset (3,) m, axis (3,)} and collision geometry."""
    root = ET.fromstring(xml_bytes.rstrip(b"\x00\r\n "))  # the shipped file ends in a NUL byte
    child_link_to_joint = {}
    joints = {}
    for j in root.iter("joint"):
        parent_link = j.find("parent").get("link")
        child_link = j.find("child").get("link")
        xyz = np.array([float(v) for v in j.find("origin").get("xyz").split()]) * scale
        axis_el = j.find("axis")
        axis = np.array([float(v) for v in axis_el.get("xyz").split()]) if axis_el is not None else np.zeros(3)
        joints[j.get("name")] = dict(
            parent_link=parent_link, child_link=child_link, type=j.get("type"), offset=xyz, axis=axis
        )
        child_link_to_joint[child_link] = j.get("name")
    for name, j in joints.items():
        j["parent"] = child_link_to_joint.get(j["parent_link"])
    geometry = {}
    for link in root.iter("link"):
        col = link.find("collision")
        if col is None:
            continue
        origin = np.array([float(v) for v in col.find("origin").get("xyz").split()]) * scale
        geom = col.find("geometry")[0]
        attrs = {k: np.array([float(v) for v in val.split()]) * scale for k, val in geom.attrib.items()}
        geometry[link.get("name")] = dict(kind=geom.tag, origin=origin, **attrs)
    return dict(joints=joints, geometry=geometry)


def _deepmimic_fk(frames: np.ndarray, urdf: dict) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Forward kinematics of DeepMimic frames (T, 44) → joint positions {name: (T,3)} and rotations {name: (T,3,3)}.

    The root frame (position + quaternion from the file) is the URDF base; every joint sits at its parent's frame
    origin + parent rotation · URDF offset, and rotates by its local quaternion (spherical) or by its angle about the
    URDF axis (revolute). Source frame: Y up.
    """
    joints = urdf["joints"]
    t = frames.shape[0]
    pos = {"root": frames[:, 1:4]}
    rot = {"root": _quat_wxyz_to_matrix(frames[:, 4:8])}
    col = 8
    local = {}
    for name in DEEPMIMIC_FRAME_JOINTS:
        kind = joints[name]["type"]
        if kind == "spherical":
            local[name] = _quat_wxyz_to_matrix(frames[:, col : col + 4])
            col += 4
        elif kind == "revolute":
            axis = joints[name]["axis"]
            if not np.allclose(np.abs(axis), [0, 0, 1]):
                raise ValueError(f"DeepMimic revolute joint {name} has axis {axis}; expected z")
            local[name] = _axis_rotation(2, frames[:, col] * np.sign(axis[2]))
            col += 1
        else:
            raise ValueError(f"unexpected joint type {kind} for {name}")
    if col != frames.shape[1]:
        raise ValueError(f"DeepMimic frame has {frames.shape[1]} values, the humanoid needs {col}")
    pending = [n for n in joints if n != "root"]
    while pending:
        for name in list(pending):
            parent = joints[name]["parent"]
            if parent not in pos:
                continue
            pos[name] = pos[parent] + rot[parent] @ joints[name]["offset"]
            rot[name] = rot[parent] @ local[name] if name in local else rot[parent]
            pending.remove(name)
    assert all(p.shape == (t, 3) for p in pos.values())
    return pos, rot


def _deepmimic_to_h36m(pos: dict, rot: dict, urdf: dict) -> tuple[np.ndarray, np.ndarray]:
    """DeepMimic joints → (T,17,3) H36M joints (source frame) and (T, 8, 3) foot-sole corner points."""
    head = urdf["geometry"]["neck"]  # the head sphere hangs on the neck link
    centre, radius = head["origin"], float(head["radius"][0])
    nose = pos["neck"] + rot["neck"] @ (centre + np.array([radius, 0.0, 0.0]))
    head_top = pos["neck"] + rot["neck"] @ (centre + np.array([0.0, radius, 0.0]))
    out = {
        "right_hip": pos["right_hip"], "right_knee": pos["right_knee"], "right_ankle": pos["right_ankle"],
        "left_hip": pos["left_hip"], "left_knee": pos["left_knee"], "left_ankle": pos["left_ankle"],
        "spine": pos["chest"], "thorax": pos["neck"], "nose": nose, "head_top": head_top,
        "left_shoulder": pos["left_shoulder"], "left_elbow": pos["left_elbow"], "left_wrist": pos["left_wrist"],
        "right_shoulder": pos["right_shoulder"], "right_elbow": pos["right_elbow"], "right_wrist": pos["right_wrist"],
    }
    out["pelvis"] = 0.5 * (pos["left_hip"] + pos["right_hip"])
    soles = []
    for side in ("left_ankle", "right_ankle"):
        box = urdf["geometry"][side]
        half = box["size"] / 2
        for sx in (-1, 1):
            for sz in (-1, 1):
                corner = box["origin"] + np.array([sx * half[0], -half[1], sz * half[2]])
                soles.append(pos[side] + rot[side] @ corner)
    return _stack_h36m(out), np.stack(soles, 1)


def _load_deepmimic(archive: _Archive) -> list[dict]:
    urdf = _parse_urdf(archive.read(archive.find("pybullet_data/humanoid/humanoid.urdf")), DEEPMIMIC_URDF_SCALE)
    names = sorted(n for n in archive.names if "pybullet_data/data/motions/humanoid3d_" in n and n.endswith(".txt"))
    clips = []
    for member in names:
        frames = np.asarray(json.loads(archive.read(member))["Frames"], dtype=np.float64)
        pos, rot = _deepmimic_fk(frames, urdf)
        joints, soles = _deepmimic_to_h36m(pos, rot, urdf)
        durations = frames[:-1, 0]
        fps = float(np.round(1.0 / np.median(durations[durations > 0]), 2))
        name = Path(member).stem.replace("humanoid3d_", "")
        clips.append(
            dict(
                source="deepmimic", clip=name, fps=fps,
                joints=joints @ Y_UP_TO_Z_UP_DEEPMIMIC.T, soles=soles @ Y_UP_TO_Z_UP_DEEPMIMIC.T,
            )
        )
    return clips
