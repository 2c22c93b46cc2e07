"""mfcore: the science of the MetaFuse book (it never imports the book machinery, ``mfbook``).

Modules are named after the domain: ``geometry`` (cameras, epipolar lines, triangulation), ``skeleton`` (the 17-joint
H36M body), ``motion`` (real motion capture and its train / test / stress splits), ``studio`` (camera rigs: sensors and
their person-centred views), ``render`` (GPU renderer), ``data`` (multi-view samples), ``backbone`` (SimpleBaseline),
``fusion`` (NaiveFuse / AffineFuse), ``maml`` (MetaFuse meta-training), ``targets`` (target rigs), ``fewshot`` (the
few-shot protocol), ``oracle`` (the epipolar oracle), ``epipolar`` (chapter 1's geometry), ``pictorial``
(triangulation, PSM, RPSM), ``trainable_fusion`` (Tekin et al.), ``metrics`` (JDR, MPJPE), ``stats`` (paired bootstrap
intervals), ``claims`` (the papers' claims and the scorecard), ``calibration`` (calibration files to rigs), ``adapt``
(your own cameras), ``profiles`` (every size), ``optim``, ``files``, ``runtime`` (cache and progress hooks).
"""

__version__ = "0.1.0"
