# %% [markdown]
# # 7. The reproduction scorecard
#
# Each row is one claim of the three papers, checked against the tables that the chapters of this book computed at the
# same profile (`results/<profile>/<chapter>/*.csv`). Nothing here is typed in: the claims, the papers' numbers and the
# test each claim gets are written once in `mfcore/claims.py`, and our number is read from the chapter's table that
# the *evidence* column names. A claim is **yes** when our measurement agrees with the paper's statement, **no** when it
# does not, and **not run** when the chapter that measures it did not produce the table.
#
# ```{important}
# These are measurements on a synthetic studio (rendered capsule bodies driven by real motion capture), with smaller
# networks and far shorter training than the papers. A claim that does not hold here is reported as such; it is not a
# verdict on the paper, and the chapter that measured it discusses why.
# ```

# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""

# %%
import pandas as pd

from mfcore import claims
from mfbook import chapter
from mfbook.paths import results_dir

ch = chapter.open_chapter("07_scorecard", profile=profile, device=device, seed=seed, out_dir=out_dir)
card = claims.scorecard(results_dir() / ch.profile.name)  # this run's tables (the runner says where)
ch.save_table(card, "scorecard")
counts = card.holds.value_counts()
ch.glue("claims_total", len(card))
ch.glue("claims_hold", int(counts.get("yes", 0)))
ch.glue("claims_fail", int(counts.get("no", 0)))
ch.glue("claims_tie", int(counts.get("tie", 0)))
ch.glue("claims_not_run", int(counts.get("not run", 0)));

# %% [markdown]
# Of {glue:text}`claims_total` claims, {glue:text}`claims_hold` hold, {glue:text}`claims_fail` do not,
# {glue:text}`claims_tie` are ties (the 95 % interval of the paired difference covers zero: the test frames cannot
# tell the methods apart), and {glue:text}`claims_not_run` were not measured at this profile.

# %%
from IPython.display import HTML

from mfbook import tables


def colour(v):
    return {"yes": "background-color:#d9f2d9", "no": "background-color:#f7d4d4",
            "tie": "background-color:#f7ecc4"}.get(v, "background-color:#eeeeee")


shown = card[["claim_id", "paper", "claim", "paper_value", "our_value", "holds", "ci_low", "ci_high", "n", "unit",
              "evidence"]].round({"ci_low": 2, "ci_high": 2})
styled = tables.styled(shown, uuid="scorecard").map(colour, subset=["holds"]).hide(axis="index")
HTML(styled.set_table_attributes('style="font-size:0.8em"').to_html())

# %%
import matplotlib.pyplot as plt

order = ["yes", "tie", "no", "not run"]
per_paper = card.groupby(["paper", "holds"]).size().unstack(fill_value=0).reindex(columns=order, fill_value=0)
fig, ax = plt.subplots(figsize=(7, 2.6))
per_paper.plot.barh(stacked=True, color=["#4c9a4c", "#d9b84a", "#c44e4e", "#aaaaaa"], ax=ax)
ax.set(xlabel="claims (count)", ylabel="",
       title=f"{int(counts.get('yes', 0))} of {len(card)} claims hold at profile {ch.profile.name}")
ax.legend(title="holds", loc="lower right", fontsize=8)
ch.save_figure(fig, "scorecard")
plt.show()

# %% [markdown]
# ## The intervals
#
# Each claim's deciding interval: the 95 % bootstrap interval of the paired difference it states (JDR points or mm,
# per panel), around zero. An interval clear of zero on the claimed side is "yes", on the other side "no", across
# zero "tie"; for "close to" and "far below" claims the threshold is the claim's own (±1 point, 1 point). The
# direction each claim wants is in its text (JDR differences: above zero; 3D differences: below zero). Colour: the
# verdict (green yes, amber tie, red no).

# %%
COLOURS = {"yes": "#4c9a4c", "tie": "#d9b84a", "no": "#c44e4e"}
with_ci = card.dropna(subset=["ci_low"])
units = list(dict.fromkeys(with_ci.unit))
fig, axes = plt.subplots(1, max(len(units), 1), figsize=(5.5 * max(len(units), 1), 0.5 + 0.45 * len(with_ci)),
                         squeeze=False)
for ax, unit in zip(axes[0], units):
    part = with_ci[with_ci.unit == unit].iloc[::-1]
    y = range(len(part))
    for yi, r in zip(y, part.itertuples()):
        ax.plot([r.ci_low, r.ci_high], [yi, yi], color=COLOURS.get(r.holds, "grey"), lw=4, solid_capstyle="butt")
    ax.axvline(0, color="black", lw=0.8)
    if unit == "mm":  # errors of a few mm and of metres (a poor profile's) on one axis
        ax.set_xscale("symlog", linthresh=1.0)
    ax.set_yticks(list(y), list(part.claim_id))
    ax.set(xlabel=f"paired difference ({'JDR points' if unit == 'points' else 'mm; symlog'}; 95 % CI)",
           title=f"claims in {'JDR points' if unit == 'points' else unit}")
fig.suptitle(f"{int(counts.get('yes', 0))} yes, {int(counts.get('tie', 0))} tie, {int(counts.get('no', 0))} no "
             f"at profile {ch.profile.name}: each claim's interval around zero")
fig.tight_layout()
ch.save_figure(fig, "scorecard_intervals")
plt.show()

# %% [markdown]
# ## The claims that do not hold
#
# Every "no" and "tie", with its evidence (written from the numbers by `mfcore.claims.claim_paragraph`; each chapter
# shows its own under "Claims of this chapter").

# %%
from IPython.display import Markdown

Markdown("\n\n".join(p for p in (claims.claim_paragraph(r) for _, r in card.iterrows()) if p)
         or "Every measured claim holds at this profile.")

# %% [markdown]
# ## How each claim is tested
#
# The test of each claim is the function of the same name in `mfcore/claims.py`; tolerances are named constants
# there (for example "close to" = within one JDR percentage point), chosen before any result was seen. Where the papers
# are vague ("far below", "close to"), that constant is our reading of the words, stated once and used for every
# profile. Every comparison is paired on the same test frames (samples) and decided by the 95 % bootstrap interval of
# the mean difference (`mfcore.stats`: 2,000 resamples over frames, two-stage over trials or seeds where there are
# several), never at the printed precision: an earlier rule (a difference of at least 0.1 JDR point or 0.1 mm) was
# finer than the binomial standard error of a mean JDR over a few thousand detections (about 0.8 point).

# %%
ch.finish();
