"""mfcore: the thin library behind the MetaFuse book.

Modules are named after the domain: ``geometry`` (cameras, epipolar lines, triangulation), ``skeleton`` (the 17-joint
H36M body), ``motion`` (real motion capture), ``studio`` (camera rigs), ``render`` (GPU renderer), ``data`` (multi-view
samples), ``backbone`` (SimpleBaseline), ``fusion`` (NaiveFuse / AffineFuse), ``meta`` (MetaFuse meta-training),
``pictorial`` (triangulation, PSM, RPSM), ``trainable_fusion`` (Tekin et al.), ``metrics`` (JDR, MPJPE), ``profiles``
(every size) and ``book`` (the notebook runtime: seeding, results directory, provenance).
"""

__version__ = "0.1.0"
