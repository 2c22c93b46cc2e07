"""A batched ray-casting renderer in pure torch for the synthetic capture studio (GPU for the book, CPU for smoke).

Scene of one frame (all drawn per frame from a seed by :func:`sample_scene`):

* **body**: capsules along the skeleton (limbs, torso block, neck) and spheres or short capsules for the head, hands
  and feet (:data:`BODY_PRIMITIVES`). Left and right limbs have the same geometry and the same colour up to a subtle
  2% shade, so left/right confusion is a real failure mode; limbs hide one another (self-occlusion).
* **occluders**: up to :data:`MAX_BOXES` boxes (turned about Z) and :data:`MAX_PILLARS` pillars (vertical capsules)
  standing in the capture volume away from the person, so a joint hidden in one view is visible in others.
* **room**: a textured floor (tiles + block noise) and walls (stripes + block noise), seeded colours.
* **light**: Lambert shading from one directional light plus ambient.

Rays are intersected analytically (ray-capsule, ray-box, ray-room) and batched as tensors. Pixel rays are culled by
tiles: each primitive's conservative screen rectangle selects the (frame, view, primitive, tile) quadruples that can
hit, every such quadruple tests all pixels of its tile at once, and a scatter-min keeps the nearest surface per
pixel (identical to testing every primitive against every pixel, as ``tests/test_render.py`` checks). Surfaces are
shaded only where they are hit; frames go in chunks that fit a memory budget. All arithmetic is float32 (the ray-
capsule quadratic loses centimetres in half precision); on one H200 the renderer draws about 23,000 images/s at 256²
(``benchmarks/bench_render.py``).

**Visibility rule** (:func:`joint_visibility`): stated in full in :mod:`~mfcore.render.visibility`.

One module per concept:

- :mod:`~mfcore.render.body` — the body's capsules and spheres on the skeleton (:data:`BODY_PRIMITIVES`) and the
  primitives each joint owns;
- :mod:`~mfcore.render.scene` — :class:`Scene` and :func:`sample_scene`, the seeded per-frame draw of clothes,
  occluders, room textures and light;
- :mod:`~mfcore.render.rays` — analytic ray-capsule, ray-box and ray-room intersections and the dense
  :func:`nearest_hits`;
- :mod:`~mfcore.render.visibility` — :func:`joint_visibility`, the depth test of every joint in every view;
- :mod:`~mfcore.render.tiles` — pixel rays and tile culling: the nearest surface of every pixel;
- :mod:`~mfcore.render.shading` — Lambert shading of the body, the occluders and the textured room;
- :mod:`~mfcore.render.images` — :func:`render_images`, frames in chunks that fit a memory budget.
"""

from .body import (BODY_NAMES, BODY_PRIMITIVES, HAIR, NUM_BODY, OWN_PRIMITIVES, PANTS, PART_NAMES, SHIRT, SHOES, SKIN,
                   TORSO, J, Tensor, body_primitives)
from .scene import LEFT_SHADE, MAX_BOXES, MAX_PILLARS, NUM_CAPSULES, Scene, sample_scene
from .rays import NEAR_M, ROOM_HALF_SIZE_M, ROOM_HEIGHT_M, nearest_hits
from .visibility import OCCLUSION_MARGIN_M, joint_visibility
from .tiles import pixel_rays, tile_size
from .images import render_images

# The private helpers are re-exported too: tests reach them as ``render._name``.
from .body import _own_primitives, _unit
from .rays import _box_local_origin, _box_t, _capsule_constants, _capsule_t, _room_hits, _rotate_z
from .tiles import (_box_corners, _box_rects, _candidates, _capsule_rects, _from_tiles, _scatter_min, _screen_rects,
                    _to_tiles, _trace_tiles)
from .shading import _room_colour, _shade
from .images import _chunk_frames

__all__ = ["BODY_NAMES", "BODY_PRIMITIVES", "HAIR", "LEFT_SHADE", "MAX_BOXES", "MAX_PILLARS", "NEAR_M", "NUM_BODY",
           "NUM_CAPSULES", "OCCLUSION_MARGIN_M", "OWN_PRIMITIVES", "PANTS", "PART_NAMES", "ROOM_HALF_SIZE_M",
           "ROOM_HEIGHT_M", "SHIRT", "SHOES", "SKIN", "TORSO", "Scene", "body_primitives", "joint_visibility",
           "nearest_hits", "pixel_rays", "render_images", "sample_scene", "tile_size"]
