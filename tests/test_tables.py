"""Tables on the pages read for people: a rounded column shows its digits (0.59, not 0.590000), a missing value is a
dash, MetaFuse^50 is a superscript; the CSV values themselves are never changed."""

import numpy as np
import pandas as pd
import pytest

from mfbook import tables


def test_a_column_shows_the_digits_it_carries_and_three_significant_ones_of_a_typical_entry():
    assert tables.column_decimals([0.59, -0.03, 1.2]) == 2  # a chapter rounded it to 2 decimals
    assert tables.column_decimals([0.9123456, 0.8754321]) == 3  # JDR: 0.912
    assert tables.column_decimals([45.678, 52.1234]) == 1  # mm: 45.7
    assert tables.column_decimals([1385.2, 2210.7]) == 0  # m-sized errors: 1385
    assert tables.column_decimals([1.0, 2.0, np.nan]) == 0 and tables.column_decimals([np.nan]) == 0
    assert tables.column_decimals([1e-9, 3e-9]) == tables.MAX_DECIMALS


@pytest.mark.parametrize("value, decimals, text", [
    (0.59, 2, "0.59"), (0.912345, 3, "0.912"), (1385.2, 0, "1385"), (123456.7, 1, "123,456.7"),
    (np.nan, 2, "—"), (None, 2, "—"), (pd.NA, 0, "—"), (3.1e-7, 3, "3.1e-07"), (-0.0001, 2, "-0.0001"),
    (-0.0, 2, "0.00"), (-0.001, 2, "-0.001"), (np.inf, 2, "∞"), (True, 0, "yes")])
def test_one_number_for_a_page(value, decimals, text):
    assert tables.format_number(value, decimals) == text


def test_superscripts_in_html_and_markdown_but_never_in_code_math_or_roles():
    assert tables.superscripts_html("MetaFuse^50 < NaiveFuse^full & x^{2k}") == (
        "MetaFuse<sup>50</sup> &lt; NaiveFuse<sup>full</sup> &amp; x<sup>2k</sup>")
    md = "**MetaFuse^50**, T^θ, $x^2$, `a^b`, MetaFuse^{glue:text}`k`, ```\nf'{m}^K'\n```"
    assert tables.superscripts_markdown(md) == (
        "**MetaFuse<sup>50</sup>**, T<sup>θ</sup>, $x^2$, `a^b`, MetaFuse<sup>{glue:text}`k`</sup>, ```\nf'{m}^K'\n```")
    assert tables.superscripts_markdown(tables.superscripts_markdown(md)) == tables.superscripts_markdown(md)
    assert tables.superscripts_markdown("2 ^ 3 and ^K alone") == "2 ^ 3 and ^K alone"


def scorecard_like() -> pd.DataFrame:
    return pd.DataFrame({
        "claim_id": ["MF-fig7-meta50", "MF-table2"],
        "claim": ["MetaFuse^50 − NoFusion, mean JDR (points), above 0", "NoFusion > MetaFuse^50 <check>"],
        "ci_low": [0.59, -0.031234], "ci_high": [1.2, np.nan],
        "n": pd.array([1200, None], dtype="Int64"), "holds": ["yes", "not run"]})


def test_a_displayed_table_reads_for_people_and_its_values_stay_as_they_were():
    card = scorecard_like().round({"ci_low": 2, "ci_high": 2})
    before = card.copy()
    page = tables.to_html(card)
    assert "<td>0.59</td>" in page and "<td>-0.03</td>" in page and "0.590000" not in page
    assert "MetaFuse<sup>50</sup>" in page and "^" not in page and "&lt;check&gt;" in page
    assert "NaN" not in page and "&lt;NA&gt;" not in page and page.count("<td>—</td>") == 2
    assert "<td>1200</td>" in page
    assert 'overflow-x:auto' in page  # a wide table scrolls instead of running off the page
    pd.testing.assert_frame_equal(card, before)


def test_labels_and_multi_index_rows_read_for_people():
    df = pd.DataFrame({"K = 50": [0.91234, np.nan]},
                      index=pd.MultiIndex.from_tuples([("h36m", "MetaFuse^K"), ("h36m", "NaiveFuse^full")],
                                                      names=["rig", "method"]))
    page = tables.to_html(df)
    assert "MetaFuse<sup>K</sup>" in page and "NaiveFuse<sup>full</sup>" in page
    assert "<td>0.912</td>" in page and "<td>—</td>" in page and "<th>rig</th>" in page


def test_a_coloured_table_reads_the_same():
    html = (tables.styled(scorecard_like().round({"ci_low": 2}), uuid="card")
            .map(lambda v: "color:red" if v == "yes" else "", subset=["holds"]).to_html())
    assert ">0.59<" in html and ">-0.03<" in html and "0.590000" not in html and "nan" not in html.lower()
    assert "MetaFuse<sup>50</sup>" in html and "&lt;check&gt;" in html and "T_card" in html
    assert "color: red" in html


def test_a_chapter_displays_every_table_and_markdown_for_people(monkeypatch):
    import IPython
    from IPython.core.formatters import DisplayFormatter
    from IPython.display import Markdown

    class Shell:
        display_formatter = DisplayFormatter()

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell)
    tables.install()
    data, _ = Shell.display_formatter.format(scorecard_like().round(2))
    assert "MetaFuse<sup>50</sup>" in data["text/html"] and "<td>0.59</td>" in data["text/html"]
    assert "MF-fig7-meta50" in data["text/plain"] and "<sup>" not in data["text/plain"]  # pandas' own text
    data, _ = Shell.display_formatter.format(Markdown("**MetaFuse^50** ($x^2$)"))
    assert data["text/markdown"] == "**MetaFuse<sup>50</sup>** ($x^2$)"


def fig7_means() -> pd.DataFrame:  # in the order a groupby sorts them: alphabetical
    rows = [("h36m", m, k, v + k / 1e4) for m, v in (("MetaFuse", 0.91), ("NaiveFuse", 0.87))
            for k in (50, 100, 200, 500)]
    rows += [("h36m", "NaiveFuseFull", 1000, 0.939)]
    rows += [("h36m", "NaiveFuseMeta", k, 0.875) for k in (50, 100)]
    rows += [("h36m", "NoFusion", 0, 0.911)]
    return pd.DataFrame(rows, columns=["rig", "method", "k", "jdr"])


def test_the_few_shot_table_has_no_hole_without_a_reason():
    table, note = tables.shots_table(
        fig7_means(), "jdr", (50, 100, 200, 500), k_free={"NoFusion": "NoFusion (no labels)",
                                                           "NaiveFuseFull": "NaiveFuse^full (all 1000 frames)"},
        reasons={"NaiveFuseMeta": "the paper reports it at K = 50 and 100 only"}, labels={"MetaFuse": "MetaFuse^K"})
    assert list(table.columns) == ["K = 50", "K = 100", "K = 200", "K = 500"]
    assert list(table.index.get_level_values("method")) == [  # the references, the labelled methods, the others
        "NoFusion (no labels)", "NaiveFuse^full (all 1000 frames)", "MetaFuse^K", "NaiveFuse", "NaiveFuseMeta"]
    assert (table.loc[("h36m", "NoFusion (no labels)")] == 0.911).all()  # as Fig. 7's horizontal line
    assert table.loc[("h36m", "MetaFuse^K"), "K = 200"] == pytest.approx(0.93)
    holes = table.isna()
    assert holes.sum().sum() == 2 and holes.loc[("h36m", "NaiveFuseMeta"), ["K = 200", "K = 500"]].all()
    assert note == "— NaiveFuseMeta at K = 200, 500: the paper reports it at K = 50 and 100 only."
    page = tables.to_html(table)
    assert "NaN" not in page and "NaiveFuse<sup>full</sup>" in page


def test_a_hole_without_a_reason_or_a_k_free_method_with_several_values_is_an_error():
    with pytest.raises(ValueError, match=r"no reason given .*NaiveFuseMeta"):
        tables.shots_table(fig7_means(), "jdr", (50, 100, 200, 500), k_free={"NoFusion": "NoFusion",
                                                                              "NaiveFuseFull": "full"}, reasons={})
    with pytest.raises(ValueError, match="MetaFuse is listed as not using the K labels, but has 4 different jdr"):
        tables.shots_table(fig7_means(), "jdr", (50, 100), k_free={"MetaFuse": "MetaFuse"},
                           reasons={"NaiveFuseMeta": "r", "NaiveFuse": "r", "NaiveFuseFull": "r", "NoFusion": "r"})
