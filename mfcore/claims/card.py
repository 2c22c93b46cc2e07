"""The reproduction scorecard: every claim of :data:`~.registry.CLAIMS` checked against the chapters' tables, one
row per claim (the results contract's columns) and one per compared difference; the sentences and paragraphs the
chapters print for a claim that does not hold."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import stats
from .registry import BOTH_RIGS, CLAIMS, H36M_FRAMES, JDR, REASONS, Claim
from .units import WITHIN, Missing, Part, headline


def _evaluate(c: Claim, table: pd.DataFrame, **kw) -> tuple[dict, tuple[Part, ...]]:
    """One claim checked on a table: the scorecard's columns but the claim's own (claim_id ... evidence), and its
    parts."""
    try:
        r = c.check(table, **kw)
    except Missing as why:
        return dict(our_value=f"not measured: {why}", holds="not run", ci_low=np.nan, ci_high=np.nan, n=np.nan,
                    paper_effect=np.nan, margin=np.nan, rule="", seeds=np.nan, unit="", direction="", part=""), ()
    iv, d = r.interval, r.deciding
    return dict(our_value=r.our_value, holds=r.holds, ci_low=iv.low if iv else np.nan,
                ci_high=iv.high if iv else np.nan, n=iv.n if iv else np.nan,
                paper_effect=np.nan if d is None or d.effect.paper is None else d.effect.paper,
                margin=np.nan if d is None else d.signed_margin, rule=r.rule, seeds=r.seeds, unit=r.unit,
                direction="" if d is None else d.direction, part="" if d is None else d.label), r.parts


def fig7_findings(jdr_frames: pd.DataFrame) -> pd.DataFrame:
    """The Fig. 7 claims of :data:`CLAIMS` (those read from the per-frame JDR table) checked on every rig of the table
    apart: one row per rig and claim with ``rig, claim_id, claim, paper_value, our_value, holds, ci_low, ci_high, n,
    paper_effect, margin, rule, seeds, unit`` and, for a claim that does not hold ("no" or "inconclusive"),
    ``possible_reason`` (:data:`REASONS`: a hypothesis, not a measurement, with when it was written). A claim the paper
    makes about Human3.6M alone is checked on the H36M-like rig only. Only the headline split's frames count."""
    jdr_frames = headline(jdr_frames)
    rows = []
    for rig in jdr_frames.rig.unique():
        for c in CLAIMS:
            if c.evidence != JDR:
                continue
            out, _ = _evaluate(c, jdr_frames, rigs=[rig])
            if out["holds"] == "not run" and "H36M-like" in out["our_value"]:
                continue
            reason = REASONS.get(c.claim_id)
            rows.append(dict(rig=rig, claim_id=c.claim_id, claim=c.claim.replace(BOTH_RIGS, f"{rig} test frames")
                             .replace(H36M_FRAMES, f"{rig} test frames"), paper_value=c.paper_value, **out,
                             possible_reason=f"{reason.text} ({reason.label()})"
                             if reason and out["holds"] in ("no", "inconclusive") else ""))
    return pd.DataFrame(rows)


SCORECARD_COLUMNS = ("claim_id", "paper", "claim", "paper_value", "our_value", "holds", "ci_low", "ci_high", "n",
                     "paper_effect", "margin", "rule", "seeds", "unit", "direction", "part", "evidence")
PART_COLUMNS = ("claim_id", "part", "direction", "diff", "ci_low", "ci_high", "n", "paper_effect", "margin",
                "verdict", "n_to_decide", "seeds", "unit", "source")


class UnreadableTable(ValueError):
    """A chapter's table that a claim reads is not a readable CSV (cut short, overwritten, edited by hand): the chapter
    that wrote it has to be executed again."""


def read_evidence(results_dir: Path | str, evidence: str) -> pd.DataFrame:
    """The table ``<results_dir>/<evidence>`` (``evidence``: ``<chapter>/<table>.csv``); one that pandas cannot parse
    or that holds no rows is an :class:`UnreadableTable` whose one-line message names the file and the command that
    writes it again."""
    path = Path(results_dir) / evidence
    stem = evidence.split("/")[0]
    try:
        table = pd.read_csv(path)
        why = "" if len(table) else "it has no rows"
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        why = f"{type(err).__name__}: " + " ".join(str(err).split())[:160]
    if why:
        raise UnreadableTable(
            f"{path} is not a readable table ({why}); execute chapter {stem} again, which writes it: "
            f"python -m mfbook.run_book execute --profile {Path(results_dir).name} --only {stem} "
            f"--results {Path(results_dir).parent}") from None
    return table


def _tables(results_dir: Path | str) -> dict[str, pd.DataFrame]:
    results_dir = Path(results_dir)
    evidence = dict.fromkeys(c.evidence for c in CLAIMS if (results_dir / c.evidence).exists())
    return {e: read_evidence(results_dir, e) for e in evidence}


def scorecard(results_dir: Path | str) -> pd.DataFrame:
    """Every claim of :data:`CLAIMS` checked against the tables under ``results_dir`` (``results/<profile>``); a table
    that exists but cannot be read stops it with an :class:`UnreadableTable` naming the file and what to do."""
    return scorecard_of(_tables(results_dir))


def scorecard_parts(results_dir: Path | str) -> pd.DataFrame:
    """Every compared difference of every claim (:data:`PART_COLUMNS`), from the tables under ``results_dir``."""
    return scorecard_of(_tables(results_dir), with_parts=True)[1]


def scorecard_of(tables: dict[str, pd.DataFrame], claim_ids=None, *, with_parts: bool = False):
    """The scorecard rows of the claims (all, or those of ``claim_ids``) from tables in memory, keyed by their
    evidence path (e.g. ``{claims.JDR_FRAMES: frames}``; a chapter checks its own claims before chapter 7 runs); a
    claim whose table is not among them is "not run". With ``with_parts``: (rows, parts), parts one row per compared
    difference (:data:`PART_COLUMNS`)."""
    rows, part_rows = [], []
    for c in CLAIMS:
        if claim_ids is not None and c.claim_id not in claim_ids:
            continue
        if c.evidence in tables:
            out, parts = _evaluate(c, headline(tables[c.evidence]))
        else:
            out, parts = dict(our_value=f"not measured: {c.evidence} was not produced", holds="not run",
                              ci_low=np.nan, ci_high=np.nan, n=np.nan, paper_effect=np.nan, margin=np.nan, rule="",
                              seeds=np.nan, unit="", direction="", part=""), ()
        rows.append(dict(claim_id=c.claim_id, paper=c.paper, claim=c.claim, paper_value=c.paper_value, **out,
                         evidence=c.evidence))
        part_rows += [dict(claim_id=c.claim_id, part=p.label, direction=p.direction, diff=p.interval.diff,
                           ci_low=p.interval.low, ci_high=p.interval.high, n=p.interval.n,
                           paper_effect=np.nan if p.effect.paper is None else p.effect.paper,
                           margin=p.signed_margin, verdict=p.verdict, n_to_decide=p.n_to_decide, seeds=p.seeds,
                           unit=out["unit"], source=p.effect.source) for p in parts]
    card = pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))
    card["n"] = card.n.astype("Int64")
    card["seeds"] = card.seeds.astype("Int64")
    if not with_parts:
        return card
    return card, pd.DataFrame(part_rows, columns=list(PART_COLUMNS))


def _num(x: float, unit: str) -> str:
    return f"{x:+.3g} {unit}".strip()


def no_sentence(row) -> str:
    """One plain sentence for a claim that is "no", from its scorecard row: what the paper finds, what the deciding
    part's interval shows, and why that is a "no" (the other side of zero, or short of the margin)."""
    c = next(c for c in CLAIMS if c.claim_id == row["claim_id"])
    unit = row.get("unit", "")
    low, high, margin = row["ci_low"], row["ci_high"], row["margin"]
    if pd.isna(low):
        return f"**{c.claim_id}**: the paper finds that {c.plain}; here it does not ({row['our_value']})."
    part = f", for {row['part']}" if isinstance(row.get("part"), str) and row["part"] else ""
    paper = "" if pd.isna(row.get("paper_effect")) else f" (the paper: {_num(row['paper_effect'], unit)})"
    span = f"[{low:+.3g}, {high:+.3g}] {unit}"
    if row.get("direction") == WITHIN:  # a closeness claim
        why = f"the 95 % interval {span} lies wholly outside ±{abs(margin):g} {unit}"
    elif (row.get("direction") != "less" and high < 0) or (row.get("direction") == "less" and low > 0):
        why = f"the 95 % interval {span} lies on the other side of 0"
    else:
        why = (f"the 95 % interval {span} does not reach the margin {margin:+.3g} {unit}, half the paper's effect: "
               f"the effect is not reproduced")
    return f"**{c.claim_id}**: the paper finds that {c.plain}; here{part}{paper}, {why}."


def claim_paragraph(row) -> str:
    """The evidence paragraph of a claim that does not hold ("no" or "inconclusive"), written from a scorecard or
    :func:`fig7_findings` row: the comparison, our numbers, the deciding interval and its n, the margin, what the
    verdict means, and the possible reasons listed for that claim (:data:`REASONS`, with when they were written).
    Empty for a claim that holds or was not run."""
    holds = row["holds"]
    if holds not in ("no", "inconclusive"):
        return ""
    where = f" on {row['rig']}" if "rig" in row and isinstance(row.get("rig"), str) else ""
    text = f"**{row['claim_id']}**{where} ({holds}). The claim: {row['claim']} (paper: {row['paper_value']}). "
    text += f"Ours: {row['our_value']}. "
    if pd.notna(row.get("ci_low")):
        unit = row.get("unit", "")
        verdict = ("the interval holds both 0 and the margin, so more data are needed to tell"
                   if holds == "inconclusive" else
                   "the interval lies on the other side of 0 or wholly short of the margin")
        text += (f"Deciding interval [{row['ci_low']:+.3g}, {row['ci_high']:+.3g}] {unit} over n = {int(row['n'])} "
                 f"paired frames or samples, margin {row['margin']:+.3g} {unit}: {verdict}. Rule: {row['rule']}. ")
    reason = REASONS.get(row["claim_id"])
    if reason:
        text += f"Possible reasons ({reason.label()}; not measurements): {reason.text}."
    return text


def claims_section(tables: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, str]:
    """A chapter's "Claims of this chapter" from its own tables (keyed by evidence path): the scorecard rows of the
    claims those tables decide, and the evidence paragraphs (:func:`claim_paragraph`) of those that are "no" or
    "inconclusive" (or a sentence saying every claim holds)."""
    card = scorecard_of(tables, [c.claim_id for c in CLAIMS if c.evidence in tables])
    paragraphs = [claim_paragraph(r) for _, r in card.iterrows()]
    text = "\n\n".join(p for p in paragraphs if p) or "Every claim of this chapter holds at this profile."
    return card, text


def tally(card: pd.DataFrame) -> dict[str, int]:
    """How many claims of a scorecard are yes, no, inconclusive and not run."""
    counts = card.holds.value_counts()
    return {v: int(counts.get(v, 0)) for v in (*stats.VERDICTS, "not run")}
