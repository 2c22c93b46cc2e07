# %% [markdown]
# # 7. The reproduction scorecard
#
# Each row is one claim of the three papers, checked against the tables that the chapters of this book computed at the
# same profile (`results/<profile>/<chapter>/*.csv`); the verdicts first, then how they were decided.

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import pandas as pd
from IPython.display import Markdown, display

from mfcore import claims
from mfbook import chapter
from mfbook.paths import results_dir

ch = chapter.open_chapter("07_scorecard", profile=profile, device=device, seed=seed, out_dir=out_dir)
tables = {c.evidence: pd.read_csv(results_dir() / ch.profile.name / c.evidence) for c in claims.CLAIMS
          if (results_dir() / ch.profile.name / c.evidence).exists()}  # this run's tables (the runner says where)
card, parts = claims.scorecard_of(tables, with_parts=True)
ch.save_table(card, "scorecard")
ch.save_table(parts, "scorecard_parts")
counts = claims.tally(card)
ch.glue("claims_total", len(card))
ch.glue("claims_yes", counts["yes"])
ch.glue("claims_no", counts["no"])
ch.glue("claims_inconclusive", counts["inconclusive"])
ch.glue("claims_not_run", counts["not run"])
ch.glue("claims_parts", len(parts));

# %% [markdown]
# **The tally.** Of {glue:text}`claims_total` claims, {glue:text}`claims_yes` hold (**yes**), {glue:text}`claims_no`
# are not reproduced (**no**), {glue:text}`claims_inconclusive` are **inconclusive** (too few samples to tell) and
# {glue:text}`claims_not_run` were not measured at this profile. Each claim that is "no", in one sentence written from
# its row of the table:

# %%
display(Markdown("\n".join(f"- {claims.no_sentence(r)}" for _, r in card[card.holds == "no"].iterrows())
                 or "No claim is \"no\" at this profile."))

# %% [markdown]
# ```{important}
# These are measurements on a synthetic studio (rendered capsule bodies driven by real motion capture), with smaller
# networks and far shorter training than the papers. A claim that does not hold here is reported as such; it is not a
# verdict on the paper, and the chapter that measured it discusses why.
# ```
#
# ## How a claim is decided
#
# This is the rule, as `mfcore.stats` and `mfcore.claims` apply it; the margins are constants written next to each
# claim in `mfcore/claims`, each with the paper's number it comes from.
#
# 1. **Paired units.** Every comparison of two methods is the mean of their per-frame (per-sample) differences on the
#    SAME test frames: JDR in points (pooled: Σ detected / Σ counted joints), 3D errors in mm.
# 2. **The interval.** Its 95 % percentile bootstrap interval (2,000 resamples): frames are drawn clip by clip where
#    the table names each frame's motion clip (frames of one clip are not independent), and the seeds of the trained
#    models and the camera draws are drawn as factors crossed with the frames, so that the spread between training runs
#    and camera choices widens the interval. A claim's `seeds` column counts the seeds its trained results rest on;
#    where that is fewer than 3, its `rule` says so.
# 3. **The margin.** Before any number is computed, each compared difference gets a margin on the claimed side: half
#    the paper's effect where the paper prints the numbers (e.g. MetaFuse Table 3: 41.2 → 32.4 mm, so −4.4 mm); where
#    the paper draws or states a difference without a number, half the smallest difference the paper prints in that
#    metric (0.8 JDR point from 87.7 → 89.3 %, 0.7 mm from 32.7 → 31.3 mm). "Similar" is read as within ±1 JDR point.
# 4. **The verdict.** **yes** when the whole interval lies on the claimed side of 0 (a "yes" short of the margin says
#    so in `our_value`); **no** when it lies wholly on the other side of 0, *or wholly short of the margin*: then the
#    data exclude even half the paper's effect, and the claim is not reproduced; **inconclusive** when the interval
#    holds both 0 and the margin: too few samples, and `our_value` gives the number of units that would decide it if
#    the interval's centre stayed put and its width shrank as 1/√n.
# 5. **Claims of several parts.** A claim the paper makes at every K, on both target rigs, or as an ordering is one
#    part per difference: "yes" when every part is "yes", "no" when any part is "no", else "inconclusive". The table
#    reports the part that decided it; `scorecard_parts.csv` lists all {glue:text}`claims_parts` parts. Where a claim
#    compares joint groups, their intervals come from one simultaneous 95 % band (a max-|t| bootstrap band), so that
#    the claim cannot be read off whichever group happens to agree.
#
# The margins were written after the full results at commit c29b391 had been seen (those results are why the rule
# changed from "an interval covering 0 is a tie") and before any result that they decide.

# %%
from IPython.display import HTML

from mfbook import tables

VERDICT_BG = {"yes": "background-color:#d9f2d9", "no": "background-color:#f7d4d4",
              "inconclusive": "background-color:#f7ecc4"}


def colour(v):
    return VERDICT_BG.get(v, "background-color:#eeeeee")


shown = card[list(claims.SCORECARD_COLUMNS)].round({"ci_low": 3, "ci_high": 3, "paper_effect": 3, "margin": 3})
styled = tables.styled(shown, uuid="scorecard").map(colour, subset=["holds"]).hide(axis="index")
HTML(styled.set_table_attributes('style="font-size:0.8em"').to_html())

# %%
import matplotlib.pyplot as plt

ORDER = ["yes", "inconclusive", "no", "not run"]
COLOURS = {"yes": "#4c9a4c", "inconclusive": "#d9b84a", "no": "#c44e4e", "not run": "#aaaaaa"}
per_paper = card.groupby(["paper", "holds"]).size().unstack(fill_value=0).reindex(columns=ORDER, fill_value=0)
fig, ax = plt.subplots(figsize=(7, 2.6))
per_paper.plot.barh(stacked=True, color=[COLOURS[v] for v in ORDER], ax=ax)
ax.set(xlabel="claims (count)", ylabel="",
       title=f"{counts['yes']} of {len(card)} claims hold, {counts['no']} are not reproduced at profile "
             f"{ch.profile.name}")
ax.legend(title="holds", loc="lower right", fontsize=8)
ch.save_figure(fig, "scorecard")
plt.show()

# %% [markdown]
# ## The intervals
#
# Each claim's deciding interval (the part named in `our_value`), one panel per claim on its own scale, turned so that
# **the claimed side is to the right** (a "less" claim such as a lower error is drawn as the error's reduction): the
# black line is 0, the dashed line the margin (half the paper's effect), the star the paper's own effect where it
# prints one. An interval wholly right of 0 is "yes"; wholly left of 0, or wholly left of the margin, "no"; one that
# holds both 0 and the margin, "inconclusive". A closeness claim shows its interval of |difference| room: right of 0
# means within its tolerance. Colour: the verdict.

# %%
import numpy as np

with_ci = card.dropna(subset=["ci_low"]).reset_index(drop=True)
fig, axes = plt.subplots(len(with_ci), 1, figsize=(8.5, 0.2 + 0.62 * max(len(with_ci), 1)), squeeze=False)
for ax, r in zip(axes[:, 0], with_ci.itertuples()):
    within = r.direction == claims.WITHIN
    sign = -1.0 if r.direction == "less" else 1.0
    if within:  # the room left inside the tolerance: positive = within it
        low, high = r.margin - max(abs(r.ci_low), abs(r.ci_high)), r.margin - min(abs(r.ci_low), abs(r.ci_high))
        if r.ci_low < 0 < r.ci_high:
            high = r.margin
        margin, effect = 0.0, np.nan
    else:
        low, high = sorted((sign * r.ci_low, sign * r.ci_high))
        margin = sign * r.margin
        effect = sign * r.paper_effect if pd.notna(r.paper_effect) else np.nan
    ax.plot([low, high], [0, 0], color=COLOURS.get(r.holds, "grey"), lw=7, solid_capstyle="butt")
    ax.axvline(0, color="black", lw=1)
    if margin > 0:
        ax.axvline(margin, color="black", lw=1, ls="--")
    if np.isfinite(effect):
        ax.plot([effect], [0], marker="*", color="black", ms=10, ls="none")
    span = [v for v in (0.0, margin, effect, low, high) if np.isfinite(v)]
    lo, hi = min(span), max(span)
    pad = 0.12 * (hi - lo) if hi > lo else 1.0
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_yticks([0], [r.claim_id])
    ax.set_ylim(-1, 1)
    ax.tick_params(axis="x", labelsize=7)
    unit = "JDR points" if r.unit == "points" else r.unit
    ax.set_xlabel(f"{'room inside ±' + format(r.margin, 'g') if within else 'toward the claim'} ({unit})", fontsize=7,
                  labelpad=1)
handles = [plt.Line2D([], [], color=COLOURS[v], lw=7, label=v) for v in ORDER[:3]]
handles += [plt.Line2D([], [], color="black", lw=1, label="0"),
            plt.Line2D([], [], color="black", lw=1, ls="--", label="margin (½ paper)"),
            plt.Line2D([], [], color="black", marker="*", ls="none", label="paper's effect")]
fig.legend(handles=handles, loc="upper center", ncol=6, fontsize=7, frameon=False, bbox_to_anchor=(0.5, 1.0))
fig.suptitle(f"{counts['yes']} yes, {counts['no']} no, {counts['inconclusive']} inconclusive at profile "
             f"{ch.profile.name}: each claim's 95 % interval, claimed side to the right", y=1.03, fontsize=10)
fig.tight_layout(h_pad=0.4)
ch.save_figure(fig, "scorecard_intervals")
plt.show()

# %% [markdown]
# ## The claims that do not hold
#
# Every "no" and "inconclusive", with its evidence and rule (written from the numbers by
# `mfcore.claims.claim_paragraph`; each chapter shows its own under "Claims of this chapter"). The possible reasons are
# hypotheses, not measurements; each says which full results its text had seen when it was written.

# %%
Markdown("\n\n".join(p for p in (claims.claim_paragraph(r) for _, r in card.iterrows()) if p)
         or "Every measured claim holds at this profile.")

# %% [markdown]
# ## How each claim is tested
#
# The test of each claim is a function in `mfcore/claims` (`fig7.py`, `threed.py`, `tekin.py`), next to the margins it
# uses; `registry.py` lists the claims with the paper's words. Where the papers are vague ("similar", "by a large
# margin"), the constant is our reading of the words, stated once and used for every profile. Every comparison is
# decided by its interval, never at the printed precision: an early rule of this book (a difference of at least
# 0.1 JDR point or 0.1 mm) was finer than the binomial standard error of a mean JDR over a few thousand detections
# (about 0.8 point), and a later one (an interval covering 0 is a "tie") read a precise null as "cannot tell apart"
# although it excluded the paper's effect.

# %%
ch.finish();
