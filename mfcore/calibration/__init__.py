"""Your calibration files as the book's rig: OpenCV, COLMAP, Anipose, CMU Panoptic, H36M-style and EasyMocap.

One module per file family, one shared conventions table:

- :mod:`~mfcore.calibration.conventions` — what every format stores (rotation, translation and units, up axis, pixel
  centre, distortion) and the rules of the import, in one table; the checks every reader shares;
- :mod:`~mfcore.calibration.opencv` (OpenCV FileStorage YAML/XML, EasyMocap), :mod:`~mfcore.calibration.colmap`,
  :mod:`~mfcore.calibration.anipose`, :mod:`~mfcore.calibration.panoptic`, :mod:`~mfcore.calibration.h36m` — a
  reader and a writer each;
- :mod:`~mfcore.calibration.frame` — format detection, units (or a given scale / known baseline), up axis and
  re-centring into the book's frame: :func:`read_rig`, the one entry point;
- :mod:`~mfcore.calibration.distortion`, :mod:`~mfcore.calibration.summary` (the import in words and a drawing),
  :mod:`~mfcore.calibration.writers`, :mod:`~mfcore.calibration.cli` (``python -m mfcore.calibration``).
"""

from .conventions import (FORMATS, METRES_PER_UNIT, MIXED_UNITS_RATIO, ROTATION_TOLERANCE, UP_ROTATIONS,
                          WORKING_DISTANCE_M, real_cameras, sensors_of)
from .distortion import distort_normalised, distortion_shift_px
from .frame import (FORMAT_UNITS, FORMAT_UP, READERS, SCALED, Imported, baseline_scale, detect_format, infer_units,
                    infer_up, look_at_point, read_book, read_rig, to_book)
from .opencv import read_easymocap, read_filestorage, read_opencv, write_easymocap, write_opencv
from .colmap import read_colmap, write_colmap
from .anipose import read_anipose, write_anipose
from .panoptic import read_panoptic, write_panoptic
from .h36m import read_h36m, write_h36m
from .summary import draw_rig, save_png, summary, surface_points_m, view_overlap
from .writers import WRITERS
from .cli import main

__all__ = ["FORMATS", "FORMAT_UNITS", "FORMAT_UP", "METRES_PER_UNIT", "MIXED_UNITS_RATIO", "READERS",
           "ROTATION_TOLERANCE", "SCALED", "UP_ROTATIONS", "WORKING_DISTANCE_M", "WRITERS", "Imported",
           "baseline_scale", "detect_format", "distort_normalised", "distortion_shift_px", "draw_rig", "infer_units",
           "infer_up", "look_at_point", "main", "read_anipose", "read_book", "read_colmap", "read_easymocap",
           "read_filestorage", "read_h36m", "read_opencv", "read_panoptic", "read_rig", "real_cameras", "save_png",
           "sensors_of", "summary", "surface_points_m", "to_book", "view_overlap", "write_anipose", "write_colmap",
           "write_easymocap", "write_h36m", "write_opencv", "write_panoptic"]
