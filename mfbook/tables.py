"""Tables as people read them on the book's pages: numbers with the digits they carry, a dash for a missing value,
``MetaFuse^50`` written MetaFuse<sup>50</sup>.

A chapter's CSVs keep their values as the results contract has them (``MetaFuse^50``, six significant digits,
empty cells); only what a page shows goes through here. :func:`install` (called by ``chapter.open_chapter``) makes
every ``DataFrame`` a cell displays render by :func:`to_html` and every ``Markdown`` with its superscripts
(:func:`superscripts_markdown`); :func:`styled` is the same for a table a chapter colours itself (the scorecard);
:func:`shots_table` lays out a few-shot result (methods × K) with no hole left unexplained.
"""

from __future__ import annotations

import html
import math
import numbers
import re

import numpy as np
import pandas as pd

MISSING = "—"  # what a page shows for a value a table does not have (NaN, None, <NA>)
SIGNIFICANT = 3  # digits a column shows of its typical entry unless its values carry fewer: 0.912, 45.7, 1385
MAX_DECIMALS = 6  # a CSV's precision (chapter._canonical_csv); tinier values are written as 1.2e-07
# A superscript after a name: MetaFuse^50, NaiveFuse^full, MetaFuse^K, T^θ, x^{2k}
SUPERSCRIPT = re.compile(r"(?<=[^\W_])\^(\{[^{}\s]+\}(?!`)|[^\W_]+)")
# In Markdown: a superscript that is a MyST role (MetaFuse^{glue:text}`k`), and the spans of code or math where a
# caret is literal ($x^2$, `a^b`)
_ROLE_SUPERSCRIPT = re.compile(r"(?<=[^\W_])\^(\{[\w:.-]+\}`[^`\n]+`)")
_VERBATIM = re.compile(r"<sup>[^<]*</sup>|(`+)[\s\S]*?\1|\$\$[\s\S]*?\$\$|\$[^$\n]+\$")


def _sup(m: re.Match) -> str:
    return f"<sup>{m.group(1).strip('{}')}</sup>"


def superscripts_html(text) -> str:
    """``text`` escaped for HTML, with every ``Name^x`` written ``Name<sup>x</sup>`` (``^{...}`` groups too)."""
    return SUPERSCRIPT.sub(_sup, html.escape(str(text), quote=False))


def superscripts_markdown(text: str) -> str:
    """Markdown ``text`` with ``Name^x`` written ``Name<sup>x</sup>`` outside code spans and math (where ``^`` means
    what it says)."""
    text = _ROLE_SUPERSCRIPT.sub(r"<sup>\1</sup>", text)
    out, at = [], 0
    for m in _VERBATIM.finditer(text):
        out += [SUPERSCRIPT.sub(_sup, text[at:m.start()]), m.group(0)]
        at = m.end()
    return "".join(out) + SUPERSCRIPT.sub(_sup, text[at:])


# --------------------------------------------------------------------------------------------------------- numbers
def _is_missing(value) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array in a cell
        return False


def _decimals_carried(x: float) -> int:
    """Digits after the point in the shortest text of ``x`` (0.59 → 2, 0.9123456 → 7, 45.0 → 0)."""
    text = np.format_float_positional(x, unique=True, trim="-")
    return len(text.split(".")[1]) if "." in text else 0


def column_decimals(values) -> int:
    """The decimals a column of numbers is shown with: enough for :data:`SIGNIFICANT` digits of its median magnitude
    (0.912, 45.7, 1385), never more than its values carry (a column a chapter rounded to 2 decimals shows 2: 0.59,
    not 0.590000), at most :data:`MAX_DECIMALS`."""
    finite = np.array([float(v) for v in values if not _is_missing(v) and math.isfinite(float(v))])
    nonzero = np.abs(finite[finite != 0])
    if not nonzero.size:
        return 0
    magnitude = math.floor(math.log10(float(np.median(nonzero))))
    wanted = max(0, SIGNIFICANT - 1 - magnitude)
    return min(wanted, max(_decimals_carried(float(v)) for v in finite), MAX_DECIMALS)


def format_number(x, decimals: int) -> str:
    """One number for a page: ``decimals`` after the point, a thousands separator from 10,000 on, a missing value as
    :data:`MISSING`, a nonzero value that would show as zero in two significant digits (``3.1e-07``)."""
    if _is_missing(x):
        return MISSING
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    x = float(x)
    if not math.isfinite(x):
        return "∞" if x > 0 else "−∞" if x < 0 else MISSING
    if x != 0 and round(x, decimals) == 0:
        return f"{x:.2g}"
    text = f"{x:,.{decimals}f}" if abs(x) >= 10_000 else f"{x:.{decimals}f}"
    return "0" + text[2:] if text.startswith("-0") and float(text.replace(",", "")) == 0 else text


def _is_number(v) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, (bool, np.bool_))


def cell_formatter(values):
    """A function that writes each cell of a column for a page: numbers with the column's decimals
    (:func:`column_decimals` over its numeric cells), text escaped with its superscripts, missing as :data:`MISSING`."""
    numeric = [v for v in values if _is_number(v) and not _is_missing(v)]
    whole = all(float(v).is_integer() for v in numeric if math.isfinite(float(v)))
    decimals = 0 if whole else column_decimals(numeric)

    def write(v) -> str:
        if _is_missing(v):
            return MISSING
        if _is_number(v) or isinstance(v, (bool, np.bool_)):
            return format_number(v, decimals)
        return superscripts_html(v)
    return write


def _labels(index: pd.Index) -> pd.Index:
    """Index or column labels written for a page (each level on its own)."""
    if isinstance(index, pd.MultiIndex):
        levels = [[cell_formatter(list(index.get_level_values(i)))(v) for v in index.get_level_values(i)]
                  for i in range(index.nlevels)]
        return pd.MultiIndex.from_arrays(levels, names=[_name(n) for n in index.names])
    write = cell_formatter(list(index))
    return pd.Index([write(v) for v in index], name=_name(index.name))


def _name(name):
    return None if name is None else superscripts_html(name)


def people_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every cell, label and axis name written as text for a page (the values of ``df`` unchanged)."""
    out = pd.DataFrame({i: [cell_formatter(list(df.iloc[:, i]))(v) for v in df.iloc[:, i]]
                        for i in range(df.shape[1])}, index=range(len(df)))
    out.index, out.columns = _labels(df.index), _labels(df.columns)
    return out


def to_html(df: pd.DataFrame) -> str:
    """``df`` as an HTML table for a page (:func:`people_frame`), with pandas' table classes; the index is shown
    unless it is the default 0..n-1."""
    show_index = not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
                      and df.index.name is None)
    table = people_frame(df).to_html(escape=False, index=show_index, border=1, index_names=True, sparsify=True)
    return f'<div class="mfbook-table" style="overflow-x:auto">\n{table}\n</div>'


def styled(df: pd.DataFrame, uuid: str = "table"):
    """A pandas ``Styler`` of ``df`` whose cells and labels read as :func:`to_html`'s, for a chapter that colours
    cells itself (``styled(df).map(colour, subset=[...])``); ``uuid`` keeps its element ids the same run to run."""
    styler = df.style.set_uuid(uuid)
    styler = styler.format({c: cell_formatter(list(df[c])) for c in df.columns})
    return styler.format_index(superscripts_html, axis=0).format_index(superscripts_html, axis=1)


def _markdown(md) -> str:
    return superscripts_markdown(md.data or "")


def install() -> None:
    """Make what a cell of this IPython kernel displays read for people: every ``DataFrame`` renders by
    :func:`to_html` (its text form stays pandas' own), every ``IPython.display.Markdown`` with its superscripts
    (:func:`superscripts_markdown`); outside IPython nothing happens."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        formatters = shell.display_formatter.formatters
        formatters["text/html"].for_type(pd.DataFrame, to_html)
        formatters["text/markdown"].for_type(Markdown, _markdown)


# ---------------------------------------------------------------------------------------------- few-shot tables
def shots_table(df: pd.DataFrame, value: str, shots, k_free: dict[str, str], reasons: dict[str, str],
                index=("rig", "method"), labels: dict[str, str] | None = None) -> tuple[pd.DataFrame, str]:
    """A few-shot result laid out for reading: one row per ``index`` (rig, method), one column per K of ``shots``
    (``K = 50``…), ``value`` in the cells, rows in the order of ``df``.

    A method of ``k_free`` (method → its row label, e.g. NoFusion: "no labels") does not use the K labelled frames:
    its one value stands in every column, as the horizontal line Fig. 7 draws for it. A K that a method was not run
    at stays empty (shown as :data:`MISSING`); the Markdown note returned names each such hole with its reason
    (``reasons[method]``), so the table has no hole without one. ``labels`` renames the other methods' rows. Within a
    rig the rows follow ``k_free`` and then ``labels`` (the reading order), other methods after them.
    """
    index, labels, shots = list(index), labels or {}, [int(k) for k in shots]
    columns = [f"K = {k}" for k in shots]
    rows, holes = {}, {}
    for key, part in df.groupby(index, sort=False):
        method = key[-1]
        if method in k_free:
            if part[value].nunique() != 1:
                raise ValueError(f"{method} is listed as not using the K labels, but has {part[value].nunique()} "
                                 f"different {value} values: {sorted(part[value].unique())}")
            cells = [float(part[value].iloc[0])] * len(shots)
            label = k_free[method]
        else:
            by_k = dict(zip(part.k.astype(int), part[value].astype(float)))
            cells = [by_k.get(k, np.nan) for k in shots]
            label = labels.get(method, method)
            missing = [k for k in shots if k not in by_k]
            if missing:
                holes.setdefault(method, set()).update(missing)
        rows[(*key[:-1], label)] = cells
    rank = {label: i for i, label in enumerate([*k_free.values(), *(labels.get(m, m) for m in labels)])}
    groups = list(dict.fromkeys(key[:-1] for key in rows))
    keys = sorted(rows, key=lambda key: (groups.index(key[:-1]), rank.get(key[-1], len(rank))))
    table = pd.DataFrame.from_dict({key: rows[key] for key in keys}, orient="index", columns=columns)
    table.index = pd.MultiIndex.from_tuples(table.index, names=index)
    unexplained = [m for m in holes if not reasons.get(m)]
    if unexplained:
        raise ValueError(f"no reason given for the K that {unexplained} were not run at; valid: a reason per method "
                         f"with holes, in reasons=")
    note = " ".join(f"{MISSING} {labels.get(m, m)} at K = {', '.join(str(k) for k in sorted(ks))}: {reasons[m]}."
                    for m, ks in holes.items())
    return table, superscripts_markdown(note)
