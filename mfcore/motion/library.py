"""The committed motion library at runtime: the npz loaded once per process into clips with their split segments, and
the book's clip and split tables."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .splits import DROPPED, SPLITS, clip_segments, stress_motion_types

MOTION_DATA_DIR = Path(__file__).resolve().parents[1] / "motion_data"  # mfcore/motion_data
DEFAULT_MOTION_PATH = MOTION_DATA_DIR / "motion.npz"


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
