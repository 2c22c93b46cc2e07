"""Every writer of a rig, by format name (the export command; the round trip of the book's own rigs through every
format in the tests and on the own-cameras page)."""

from __future__ import annotations

from .. import studio
from .anipose import write_anipose
from .colmap import write_colmap
from .h36m import write_h36m
from .opencv import write_easymocap, write_opencv
from .panoptic import write_panoptic

WRITERS = {"opencv": write_opencv, "colmap": write_colmap, "anipose": write_anipose, "panoptic": write_panoptic,
           "h36m": write_h36m, "easymocap": write_easymocap, "book": studio.save_rig}


