"""The papers' claims, each with the paper's number, the margin it must reach and its paired test, and the
reproduction scorecard that chapter 7 shows (chapters 4, 5 and 6 show their own rows).

Every claim is checked against the per-frame tables the chapters computed, never typed. ``scorecard(results_dir)``
reads ``results/<profile>/<chapter>/*.csv`` and returns one row per claim with the columns of the results contract:
``claim_id, paper, claim, paper_value, our_value, holds, ci_low, ci_high, n, paper_effect, margin, rule, seeds`` (plus
``unit`` of the interval and ``evidence``: the table the numbers come from); :func:`scorecard_parts` has one row per
compared difference of every claim.

The rule (:mod:`mfcore.stats`, :mod:`mfcore.claims.units`): every comparison of two methods is paired on the SAME
test frames (samples), and decided by the 95 % bootstrap interval of the mean difference, clustered by the frames'
motion clips and crossed with the seeds of the trained models and the camera draws. Each difference has a margin,
stated here before the results it decides: half the paper's effect where the paper prints one, else half the
smallest difference the paper prints in that metric. ``holds`` is "yes" when the interval lies on the claimed side of
zero; "no" when it lies on the other side, or wholly short of the margin (the paper's effect is not reproduced);
"inconclusive" when it holds both zero and the margin (too few samples: ``our_value`` says how many would decide it);
"not run" when the chapter's table does not exist. A claim made of several differences (an ordering, a claim at every
K, on both rigs) is "yes" when every part is "yes", "no" when any is "no", else "inconclusive", and reports the part
that decided it. JDR differences are in JDR points (pooled over frames: Σ detected / Σ counted joints), 3D differences
in mm.

The package: :mod:`.units` (per-frame tables → paired units, the bootstrap design, a claim's parts → its verdict),
:mod:`.papers` (the papers' numbers and the margins stated from them), one module per paper section with its claims'
tests and their own margins (:mod:`.fig7`, :mod:`.threed`, :mod:`.tekin`), :mod:`.registry` (the claims and the
possible reasons) and :mod:`.card` (the scorecard).
"""

from .card import (PART_COLUMNS, SCORECARD_COLUMNS, UnreadableTable, claim_paragraph, claims_section,  # noqa: F401
                   fig7_findings, no_sentence, read_evidence, scorecard, scorecard_of, scorecard_parts, tally)
from .fig7 import ARM_GROUPS, CLOSE_JDR_POINTS, ELBOW_K50, LEG_GROUPS, SIMILAR, TREND_METHODS, paired_jdr  # noqa: F401
from .papers import (PAPER_MPJPE_MM, SMALLEST_JDR, SMALLEST_MM, TABLE5_MM, UNPRINTED_JDR, UNPRINTED_MM,  # noqa: F401
                     mm_effect, paper_mpjpe_mm)
from .registry import (ABLATION_SAMPLES, BOTH_RIGS, CLAIMS, CV, FIG7_REASONS, FUSION_PARAMETERS,  # noqa: F401
                       H36M_FRAMES, JDR, JDR_FRAMES, MF, MPJPE_FRAMES, REASONS, STREAM_CORRELATION, TK, Claim, Reason)
from .tekin import NO_PRINTED_VALUE, TABLE5, TEKIN_ADAM_RATE, beta_margin  # noqa: F401
from .threed import (RPSM_PAIRED_METHODS, SAVGOL_MM, TABLE2_EFFECTS, WALK_BLOCK_FRAMES, mm_interval,  # noqa: F401
                     savgol_interval)
from .units import (HEADLINE_THRESHOLD, MARGIN_SHARE, MIN_SEEDS, SAMPLED, WITHIN, Effect, Missing, Part,  # noqa: F401
                    Result, headline)
