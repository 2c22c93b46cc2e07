"""Print the framing numbers of the H36M-like test subjects at the full profile for candidate person volumes.

Labels only (no rendering, no network, no method's accuracy): for each placement radius (``mfcore.motion.
CAPTURE_RADIUS_M`` = ``mfcore.studio.PERSON_VOLUME_RADIUS_M``) and person-volume height, the person's extent in the
256² view and one 64² heatmap pixel in mm at the pelvis (:func:`mfcore.framing.framing_statistics`). The studio's
constants were chosen from this table: the acceptance of issue 16 asks person_extent_fraction >= 0.6 and
mm_per_heatmap_px <= 35 on the H36M-like rig at full.

    PYTHONPATH=. python tools/framing_radii.py [--frames 300]
"""

import argparse

from mfcore import framing, motion, profiles, studio

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--frames", type=int, default=300, help="test poses per subject")
args = parser.parse_args()
full = profiles.get_profile("full")
chosen = (motion.CAPTURE_RADIUS_M, studio.PERSON_VOLUME_HEIGHT_M)
print("radius_m height_m person_extent_fraction mm_per_heatmap_px jdr_threshold_mm out_of_image_fraction")
for radius in (0.1, 0.2, 0.3, 0.5, 1.0):
    for height in (1.8, 1.9, 2.0, 2.1):
        # the sampler reads the radius from its own module (mfcore.motion.sampling), the package re-exports it
        motion.sampling.CAPTURE_RADIUS_M = motion.CAPTURE_RADIUS_M = studio.PERSON_VOLUME_RADIUS_M = radius
        studio.PERSON_VOLUME_HEIGHT_M = height
        rigs = [studio.h36m_rig(s) for s in studio.H36M_TEST_SUBJECTS]
        row = framing.framing_statistics(rigs, "test", args.frames, full, seed=0, name="h36m_test")
        mark = "  <- chosen" if (radius, height) == chosen else ""
        print(f"{radius:8.2f} {height:8.2f} {row['person_extent_fraction']:22.3f} {row['mm_per_heatmap_px']:17.1f} "
              f"{row['jdr_threshold_mm']:16.1f} {row['out_of_image_fraction']:21.4f}{mark}")
