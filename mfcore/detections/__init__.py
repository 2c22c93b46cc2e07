"""Your 2D detections as the book's heatmaps: COCO-keypoints JSON, OpenPose JSON, heatmap arrays and the book's own
heatmaps, one module per file family under one conventions table:

- :mod:`~mfcore.detections.conventions` — joint order and the mapping of COCO-17 / BODY_25 / COCO-18 to the book's
  17-joint H36M body, pixel centre, score meaning, missing joints, people, frame matching; the checks every reader
  shares;
- :mod:`~mfcore.detections.coco`, :mod:`~mfcore.detections.openpose`, :mod:`~mfcore.detections.heatmaps` — a reader
  and a writer each;
- :mod:`~mfcore.detections.views` — sensor pixels ↔ the rig's square views, keypoints → Gaussian heatmaps,
  heatmaps over any pixel box → the view's grid;
- :mod:`~mfcore.detections.recording` — every camera's detections matched to the rig and to each other's frames:
  :func:`read_detections`, :func:`assemble`, :class:`Recording`;
- :mod:`~mfcore.detections.export` — the book's own detections of a rig written in every format (the round trip).
"""

from .conventions import (BODY25, COCO17, COCO18, H36M17, LAYOUTS, MAPPINGS, CameraKeypoints, frame_number,
                          from_h36m, mapping_matrix, to_h36m)
from .coco import read_coco, write_coco
from .openpose import read_openpose, write_openpose
from .heatmaps import (CameraHeatmaps, is_book_heatmaps, read_book_heatmaps, read_heatmaps, write_book_heatmaps,
                       write_heatmaps)
from .views import (keypoint_heatmaps, resample_heatmaps, sensor_to_view_px, sensor_window, to_h36m_heatmaps,
                    view_to_sensor_px, window_box_px)
from .recording import MATCHES, Recording, assemble, read_detections
from .export import export

__all__ = ["BODY25", "COCO17", "COCO18", "H36M17", "LAYOUTS", "MAPPINGS", "MATCHES", "CameraHeatmaps",
           "CameraKeypoints", "Recording", "assemble", "export", "frame_number", "from_h36m", "is_book_heatmaps", "keypoint_heatmaps",
           "mapping_matrix", "read_book_heatmaps", "read_coco", "read_detections", "read_heatmaps", "read_openpose",
           "resample_heatmaps", "sensor_to_view_px", "sensor_window", "to_h36m", "to_h36m_heatmaps",
           "view_to_sensor_px", "window_box_px", "write_book_heatmaps", "write_coco", "write_heatmaps",
           "write_openpose"]
