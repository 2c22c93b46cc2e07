"""The site says what it shows, and reads well offline.

Staging (``mfbook.site``), checked on a fake results tree and a git repository made in a temporary folder: the home
page names the profile and commit of every chapter; a chapter whose code changed since its results is flagged stale,
naming the files; parameter cells, staging paths and progress bars are hidden in the staged copy, never in the results.

The built site, opened in a real headless Chromium: every page renders its title, math is typeset by the local MathJax
(no raw ``$$``), no page shows ``PosixPath(``, ``.staging-``, an empty image or an error cell. Needs `make book` first
(it builds _build/html). Outside CI, a missing build or browser skips these checks; in CI (CI=true) it is a failure.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mfbook import site
from mfbook.chapter import SavedPath

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
NO_BROWSER = ("the browser checks need Chromium and its driver, not installed here: "
              "apt-get install chromium chromium-driver (as .ci/run does)")
STEMS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.py"))


def _need(condition: bool, why: str):
    if not condition:
        (pytest.fail if IN_CI else pytest.skip)(why)


# ---------------------------------------------------------------------------------------------------------------------
# Staging, on a fake repository and results tree

RUN_ROOT = "/srv/gpu-box/checkout"  # where a chapter was executed (another machine's folders)
PROGRESS = "\rwarm-up:  33%|███▎      | 2/6 [00:17<00:35,  8.79s/it, loss=0.000981]"


def _notebook(stem: str) -> dict:
    def code(source, outputs=(), tags=()):
        return {"cell_type": "code", "id": f"c{len(source)}{len(outputs)}", "metadata": {"tags": list(tags)},
                "source": source, "outputs": list(outputs), "execution_count": 1}

    return {"nbformat": 4, "nbformat_minor": 5, "metadata": {"papermill": {
        "duration": 12.5, "input_path": f"{RUN_ROOT}/results/full/.staging-{stem}/.{stem}.source.ipynb",
        "output_path": f"{RUN_ROOT}/results/full/.staging-{stem}/{stem}.ipynb",
        "parameters": {"profile": "full", "out_dir": f"results/full/.staging-{stem}"}}}, "cells": [
        {"cell_type": "markdown", "id": "title", "metadata": {}, "source": f"# {stem}\n\nThe story."},
        code('profile = "smoke"', tags=["parameters"]),
        code(f'profile = "full"\nout_dir = "results/full/.staging-{stem}"', tags=["injected-parameters"]),
        code("train()", [{"output_type": "stream", "name": "stderr", "text": [PROGRESS, "\r          \r"]},
                         {"output_type": "stream", "name": "stderr", "text": ["UserWarning: something real\n"]},
                         {"output_type": "stream", "name": "stdout", "text": ["loss 0.5\n"]}]),
        code("ch.finish()", [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                              "data": {"text/plain": ["PosixPath('/w/results/full/.staging-x/provenance.json')"]}}]),
        code("warn()", [{"output_type": "stream", "name": "stderr",
                         "text": [f"{RUN_ROOT}/mfcore/fusion.py:12: UserWarning: kept, without the checkout\n"]}]),
    ]}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def fake_repo(tmp_path):
    """A git repository with two chapters: 01 imports mfcore.a (which imports mfcore.b); 02 imports mfbook.c."""
    repo = tmp_path / "repo"
    for path, text in {
        "notebooks/01_alpha.py": "# %%\nfrom mfcore import a\n# %%\na.run()\n",
        "notebooks/02_beta.py": "# %%\nfrom mfbook.c import thing\n",
        "mfcore/__init__.py": "",
        "mfcore/a.py": "from . import b\n\ndef run():\n    return b.VALUE\n",
        "mfcore/b.py": "VALUE = 1\n",
        "mfcore/unrelated.py": "X = 0\n",
        "mfbook/__init__.py": "",
        "mfbook/c.py": "from mfcore.b import VALUE as thing\n",
    }.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "first")
    return repo


def _results(tmp_path: Path, stems_profiles: dict, sha: str, dirty: bool = False) -> Path:
    results = tmp_path / "results"
    for stem, profile in stems_profiles.items():
        out = results / profile / stem
        out.mkdir(parents=True)
        (out / f"{stem}.ipynb").write_text(json.dumps(_notebook(stem)))
        (out / "provenance.json").write_text(json.dumps({
            "stem": stem, "git_sha": sha, "git_dirty": dirty, "profile": profile, "device_name": "NVIDIA H200",
            "python": "3.12.3", "torch": "2.11.0", "cuda": "13.0", "deterministic_kernels": False, "seed": 0,
            "parameters_hash": "ab" * 32, "ended_at": "2026-11-21T17:01:49+00:00", "wall_seconds": 10.0}))
    return results


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(p.as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_a_chapter_depends_on_its_notebook_and_every_module_it_imports_transitively(fake_repo):
    assert site.code_paths("01_alpha", fake_repo) == (
        "mfcore/__init__.py", "mfcore/a.py", "mfcore/b.py", "notebooks/01_alpha.py")
    assert site.code_paths("02_beta", fake_repo) == (
        "mfbook/__init__.py", "mfbook/c.py", "mfcore/__init__.py", "mfcore/b.py", "notebooks/02_beta.py")


def test_the_real_chapters_depend_on_the_science_and_the_runtime():
    paths = site.code_paths("03_meta_training")
    assert "notebooks/03_meta_training.py" in paths and "mfbook/chapter.py" in paths
    assert "mfcore/profiles.py" in paths  # through mfbook.chapter
    assert "mfcore/scorecard.py" not in paths  # chapter 3 does not import it


def test_results_are_stale_exactly_when_their_code_changed_since_their_commit(fake_repo):
    first = _git(fake_repo, "rev-parse", "HEAD")
    assert not site.staleness("01_alpha", {"git_sha": first}, fake_repo).stale
    (fake_repo / "mfcore" / "unrelated.py").write_text("X = 1\n")  # a module neither chapter imports
    _git(fake_repo, "commit", "-qam", "unrelated")
    assert not site.staleness("01_alpha", {"git_sha": first}, fake_repo).stale
    (fake_repo / "mfcore" / "b.py").write_text("VALUE = 2\n")  # imported by 01 through a, by 02 through mfbook.c
    _git(fake_repo, "commit", "-qam", "b")
    state = site.staleness("01_alpha", {"git_sha": first[:7]}, fake_repo)
    assert state.stale and state.known and state.changed == ("mfcore/b.py",)
    assert site.staleness("02_beta", {"git_sha": first}, fake_repo).changed == ("mfcore/b.py",)
    now = _git(fake_repo, "rev-parse", "HEAD")
    assert not site.staleness("01_alpha", {"git_sha": now}, fake_repo).stale
    (fake_repo / "notebooks" / "01_alpha.py").write_text("# %%\nfrom mfcore import a\n")  # uncommitted edit
    assert site.staleness("01_alpha", {"git_sha": now}, fake_repo).changed == ("notebooks/01_alpha.py",)


def test_an_unknown_commit_or_a_modified_tree_is_stale_and_says_why(fake_repo):
    now = _git(fake_repo, "rev-parse", "HEAD")
    unknown = site.staleness("01_alpha", {"git_sha": "0123456789abcdef"}, fake_repo)
    assert unknown.stale and not unknown.known and "not in this repository's history" in unknown.reasons()[0]
    assert site.staleness("01_alpha", {}, fake_repo).stale  # no provenance at all
    dirty = site.staleness("01_alpha", {"git_sha": now, "git_dirty": True}, fake_repo)
    assert dirty.stale and dirty.changed == () and "modified tree" in dirty.reasons()[0]


def test_staging_names_profile_and_commit_of_every_chapter_and_flags_the_stale_one(fake_repo, tmp_path):
    first = _git(fake_repo, "rev-parse", "HEAD")
    results = _results(tmp_path, {"01_alpha": "full", "02_beta": "smoke"}, first)
    (fake_repo / "mfcore" / "a.py").write_text("from . import b\n\ndef run():\n    return 2 * b.VALUE\n")
    _git(fake_repo, "commit", "-qam", "a changes")
    before = _tree_hash(results)
    out = tmp_path / "site"
    entries = site.stage(out, results, fake_repo)

    assert _tree_hash(results) == before  # the results themselves are never touched
    assert {e["stem"]: e["profile"] for e in entries} == {"01_alpha": "full", "02_beta": "smoke"}
    assert json.loads((out / "profiles.json").read_text()) == {"01_alpha": "full", "02_beta": "smoke"}
    home = (out / "chapters.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in home.splitlines() if "{doc}" in line}
    assert "`full`" in rows["{doc}`/book/_site/01_alpha/01_alpha`"]
    assert "`smoke`" in rows["{doc}`/book/_site/02_beta/02_beta`"]
    for row in rows.values():
        assert f"`{first[:10]}`" in row and "NVIDIA H200" in row and "2026-11-21" in row
    assert "**stale**" in rows["{doc}`/book/_site/01_alpha/01_alpha`"] and "mfcore/a.py" in home
    assert "current" in rows["{doc}`/book/_site/02_beta/02_beta`"]

    stale_nb = json.loads((out / "01_alpha" / "01_alpha.ipynb").read_text())
    top = stale_nb["cells"][1]  # right below the title
    assert stale_nb["cells"][0]["id"] == "title" and top["cell_type"] == "markdown"
    assert "```{warning}" in top["source"] and "Stale results" in top["source"]
    assert f"`{first[:10]}`" in top["source"] and "`mfcore/a.py`" in top["source"]
    assert "{download}`the executed notebook <01_alpha.ipynb>`" in top["source"]
    assert "{download}`its source, 01_alpha.py <01_alpha.py>`" in top["source"]
    assert (out / "01_alpha" / "01_alpha.py").read_text() == (fake_repo / "notebooks" / "01_alpha.py").read_text()
    current_nb = json.loads((out / "02_beta" / "02_beta.ipynb").read_text())
    assert "{warning}" not in current_nb["cells"][1]["source"] and "current" in current_nb["cells"][1]["source"]

    repro = (out / "reproducibility_table.md").read_text()
    for text in ("01_alpha", "02_beta", "3.12.3", "2.11.0", "13.0", "12.5", "abababababab", first[:10]):
        assert text in repro, text


def test_the_downloadable_notebook_names_its_final_folder_and_no_machines_paths(fake_repo):
    first = _git(fake_repo, "rev-parse", "HEAD")
    results = _results(fake_repo, {"01_alpha": "full", "02_beta": "smoke"}, first)  # results/ inside the checkout
    before = _tree_hash(results)
    site.stage(fake_repo / "book" / "_site", results, fake_repo)
    assert _tree_hash(results) == before
    for stem, profile in (("01_alpha", "full"), ("02_beta", "smoke")):
        nb = json.loads((fake_repo / "book" / "_site" / stem / f"{stem}.ipynb").read_text())
        text = json.dumps(nb)
        for leak in (RUN_ROOT, str(fake_repo), ".staging-", "source.ipynb"):
            assert leak not in text, (stem, leak)
        papermill = nb["metadata"]["papermill"]
        assert papermill["input_path"] == f"notebooks/{stem}.py"
        assert papermill["output_path"] == f"results/{profile}/{stem}/{stem}.ipynb"
        assert papermill["parameters"] == {"profile": "full", "out_dir": f"results/{profile}/{stem}"}
        injected = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        assert f'out_dir = "results/{profile}/{stem}"' in injected["source"]
        assert f"read from `results/{profile}/{stem}`" in nb["cells"][1]["source"]  # the page says where
        warned = [o["text"] for c in nb["cells"] for o in c.get("outputs", []) if "fusion.py" in json.dumps(o)]
        assert warned == [["mfcore/fusion.py:12: UserWarning: kept, without the checkout\n"]]


def test_a_site_can_show_one_run_folder_or_one_profile(fake_repo, tmp_path):
    first = _git(fake_repo, "rev-parse", "HEAD")
    committed = _results(tmp_path / "committed", {"01_alpha": "full", "02_beta": "full"}, first)
    _results(committed.parent / "more", {"01_alpha": "smoke", "02_beta": "smoke"}, first)
    shutil.copytree(committed.parent / "more" / "results" / "smoke", committed / "smoke")
    own = _results(tmp_path / "own", {"01_alpha": "smoke", "02_beta": "smoke"}, first)  # one's own smoke run
    out = tmp_path / "site"
    assert {e["profile"] for e in site.stage(out, committed, fake_repo)} == {"full"}
    assert {e["profile"] for e in site.stage(out, own, fake_repo)} == {"smoke"}
    assert json.loads((out / "01_alpha" / "01_alpha.ipynb").read_text())["metadata"]["papermill"]["output_path"] \
        == f"{own}/smoke/01_alpha/01_alpha.ipynb"  # a folder outside the checkout is named as given
    assert {e["profile"] for e in site.stage(out, committed, fake_repo, profiles=("smoke",))} == {"smoke"}
    (out / "keep").write_text("")
    with pytest.raises(site.SiteError, match="no executed results for 01_alpha, 02_beta in .*empty/full or .*empty/smoke"):
        site.stage(out, tmp_path / "empty", fake_repo)
    assert (out / "keep").exists()  # nothing was replaced


def test_the_staged_copy_hides_parameters_staging_paths_and_progress_bars():
    nb = site.clean_notebook(_notebook("01_alpha"))
    cells = nb["cells"]
    assert "remove-cell" in cells[1]["metadata"]["tags"] and "remove-cell" in cells[2]["metadata"]["tags"]
    assert "remove-cell" not in cells[3]["metadata"]["tags"]
    streams = cells[3]["outputs"]
    assert [o["text"] for o in streams] == [["UserWarning: something real\n"], ["loss 0.5\n"]]  # real output stays
    assert cells[4]["outputs"] == []
    assert ".staging-" not in json.dumps([c.get("outputs", []) for c in cells])


def test_a_saved_path_prints_nothing_when_it_ends_a_cell(tmp_path):
    from IPython.core.formatters import DisplayFormatter

    path = SavedPath(tmp_path / "x.png")
    assert DisplayFormatter().format(path) == ({}, {})
    assert path == tmp_path / "x.png" and isinstance(path, Path)  # still a path for code that uses it


def test_the_site_draws_the_recorded_book_run_or_says_there_is_none(tmp_path):
    from PIL import Image

    out = tmp_path / "timeline.png"
    site.draw_book_run(out, tmp_path / "results")  # nothing recorded
    none_size = Image.open(out).size
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "book_run.json").write_text(json.dumps({
        "jobs": 2, "wall_seconds": 30.0, "failed": [],
        "chapters": {"01_a": {"start_s": 0.0, "end_s": 10.0, "seconds": 10.0},
                     "02_b": {"start_s": 2.0, "end_s": 20.0, "seconds": 18.0},
                     "03_c": {"start_s": 20.0, "end_s": 30.0, "seconds": 10.0}}}))
    site.draw_book_run(out, tmp_path / "results")
    assert Image.open(out).size != none_size and Image.open(out).size[1] > 100


def test_the_citation_file_is_cff_1_2_0_and_cites_the_three_papers():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["title"] and cff["license"] == "MIT"
    assert cff["authors"] == [{"name": "The MetaFuse book developers"}]
    refs = {r["title"]: r for r in cff["references"]}
    assert {(r["type"], r["year"], r["authors"][0]["family-names"]) for r in refs.values()} == {
        ("conference-paper", 2020, "Xie"), ("conference-paper", 2019, "Qiu"), ("conference-paper", 2017, "Tekin")}
    for ref in refs.values():
        assert ref["conference"]["name"] and all(a["given-names"] for a in ref["authors"])
    assert set(cff) <= {"cff-version", "message", "type", "title", "authors", "version", "license", "keywords",
                        "references", "repository-code", "date-released", "abstract", "doi"}


def test_every_citation_on_the_pages_is_in_the_bibliography():
    import re

    bib = set(re.findall(r"@\w+\{(\w+),", (REPO / "references.bib").read_text()))
    cited = {key for page in (REPO / "book").glob("*.md")
             for keys in re.findall(r"\{cite(?::p|:t)?\}`([^`]+)`", page.read_text()) for key in keys.split(",")}
    cited |= {key for keys in site.CHAPTER_CITATIONS.values() for key in keys}
    assert {"xie2020metafuse", "qiu2019crossview", "tekin2017fuse"} <= cited
    assert cited <= bib, cited - bib


def test_the_config_serves_mathjax_from_the_site_and_lists_the_new_pages():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert "sphinx-mathjax-offline" in config["sphinx"]["extra_extensions"]
    assert "mathjax_path" not in config["sphinx"]["config"]  # the extension sets the local path
    assert config["bibtex_bibfiles"] == ["references.bib"]
    toc = (REPO / "_toc.yml").read_text()
    assert "book/reproducibility" in toc and "book/references" in toc


# ---------------------------------------------------------------------------------------------------------------------
# The built site in a real browser


@pytest.fixture(scope="module")
def browser():
    _need((HTML / "index.html").exists(), "no built site: run `make book` first")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    _need(bool(chromium and driver_path), NO_BROWSER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files", "--window-size=1400,1000"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.set_page_load_timeout(60)
    drv.set_script_timeout(60)
    yield drv
    drv.quit()


def site_pages() -> list[Path]:
    if not HTML.exists():
        return []
    return sorted(p for p in HTML.rglob("*.html") if not {"_static", "_sources"} & set(p.relative_to(HTML).parts)
                  and p.name not in {"genindex.html", "search.html"})


def open_page(browser, page: Path) -> str:
    """Load ``page``, wait until MathJax (where the page loads it) has typeset everything, return the visible text."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.as_uri())  # the root index.html redirects to the home page: wait for a page with a body
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(
        "return document.readyState === 'complete' && !!document.body && !!document.querySelector('h1');"))
    browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const t0 = Date.now();
        (function wait() {
          if (!document.querySelector('script[src*="mathjax"]')) return done(true);
          if (window.MathJax && MathJax.startup && MathJax.startup.promise) return MathJax.startup.promise.then(
              () => done(true), () => done(false));
          if (Date.now() - t0 > 30000) return done(false);
          setTimeout(wait, 100);
        })();""")
    return browser.execute_script("return document.body.innerText;")


def test_the_site_has_the_intro_every_chapter_and_the_reader_pages():
    _need((HTML / "index.html").exists(), "no built site: run `make book` first")
    names = {p.relative_to(HTML).as_posix() for p in site_pages()}
    for page in ("intro", "how_to_run", "benchmarks", "own_cameras", "reproducibility", "references"):
        assert f"book/{page}.html" in names, page
    for stem in STEMS:
        assert f"book/_site/{stem}/{stem}.html" in names, stem


def test_every_page_renders_its_math_figures_and_outputs_cleanly(browser):
    pages = site_pages()
    assert pages
    for page in pages:
        text = open_page(browser, page)
        title = browser.execute_script("var h = document.querySelector('h1'); return h ? h.textContent : '';")
        assert title.strip(), f"{page} has no title"
        for raw in ("$$", "PosixPath(", ".staging-", "```{", "Traceback (most recent call last)"):
            assert raw not in text, f"{page}: the page shows {raw!r}"
        untypeset = browser.execute_script(
            "return Array.from(document.querySelectorAll('.math')).filter(m => !m.querySelector('mjx-container'))"
            ".map(m => m.textContent.slice(0, 60));")
        assert not untypeset, f"{page}: math not typeset (raw LaTeX): {untypeset}"
        scripts = browser.execute_script(
            "return Array.from(document.scripts).map(s => s.src).filter(s => s.includes('mathjax'));")
        assert all(s.startswith("file://") for s in scripts), f"{page}: MathJax from the network: {scripts}"
        empty = browser.execute_script(
            "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 1 && i.naturalHeight > 1))"
            ".map(i => i.src);")
        assert not empty, f"{page}: broken or empty images {empty}"
        for src in browser.execute_script("return Array.from(document.images).map(i => i.src);"):
            if src.startswith("file://"):
                assert Path(src[len("file://"):].split("#")[0]).stat().st_size > 100, f"{page}: empty image file {src}"
        cut = browser.execute_script("""
            const article = document.querySelector('.bd-article');
            if (!article) return [];
            const width = article.getBoundingClientRect().width;
            return Array.from(article.querySelectorAll('table')).filter(t => {
              if (t.getBoundingClientRect().width <= width + 1) return false;
              for (let e = t.parentElement; e && e !== article; e = e.parentElement)
                if (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) return false;
              return true;  // wider than the page and nothing scrolls it: cut off
            }).map(t => t.innerText.slice(0, 60));""")
        assert not cut, f"{page}: tables cut off at the page edge: {cut}"
        errors = browser.execute_script(
            "return document.querySelectorAll('.output.error, .output.traceback, .cell_output .ename').length;")
        assert errors == 0, f"{page}: {errors} error cells"
        outputs = browser.execute_script("""
            // what the cells' outputs show: everything, and the tables and Markdown alone (no printed text, code, math)
            const all = [], read = [];
            document.querySelectorAll('.cell_output').forEach(o => {
              all.push(o.textContent);
              const c = o.cloneNode(true);
              c.querySelectorAll('pre, code, .math, mjx-container, script, style').forEach(e => e.remove());
              read.push(c.textContent);
            });
            return [all.join('\\n'), read.join('\\n')];""")
        kernel_paths = re.findall(r".{0,40}ipykernel_\d+.{0,30}", outputs[0])
        assert not kernel_paths, f"{page}: an output names a kernel's temporary file: {kernel_paths[:3]}"
        unread = re.findall(r".{0,40}(?:\bNaN\b|\d\.\d*0000\b|[A-Za-z]\^[A-Za-z0-9{]).{0,30}", outputs[1])
        assert not unread, f"{page}: tables or Markdown show NaN, 0.590000-style numbers or raw carets: {unread[:5]}"


def test_math_is_typeset_by_the_local_mathjax(browser):
    text = open_page(browser, HTML / "book" / "_site" / "01_fusion_geometry" / "01_fusion_geometry.html")
    assert browser.execute_script("return document.querySelectorAll('mjx-container').length;") >= 1
    src = browser.execute_script("return document.querySelector('script[src*=\"tex-chtml\"]').src;")
    assert src.startswith("file://") and src.endswith("_static/mathjax/tex-chtml.js")
    assert Path(src[len("file://"):]).exists() and "$$" not in text


def test_the_home_page_names_the_profile_and_commit_of_every_chapter(browser):
    open_page(browser, HTML / "book" / "intro.html")
    rows = browser.execute_script(  # each row of the chapters table, by the page its first cell links to
        "return Array.from(document.querySelectorAll('table tr')).filter(r => r.querySelector('td a'))"
        ".map(r => [r.querySelector('td a').getAttribute('href'), r.innerText]);")
    profiles = json.loads((REPO / "book" / "_site" / "profiles.json").read_text())
    assert set(profiles) == set(STEMS)
    for stem, profile in profiles.items():
        prov = json.loads((REPO / "book" / "_site" / stem / "provenance.json").read_text())
        row = [text for href, text in rows if href.endswith(f"_site/{stem}/{stem}.html")]
        assert len(row) == 1, f"{stem}: no row for it on the home page"
        assert profile in row[0] and prov["git_sha"][:7] in row[0] and prov["device_name"] in row[0], row[0]
        state = site.staleness(stem, prov)
        assert ("stale" in row[0]) == state.stale, row[0]


def test_chapter_pages_show_figures_provenance_staleness_and_downloads(browser):
    for stem in STEMS:
        page = HTML / "book" / "_site" / stem / f"{stem}.html"
        text = open_page(browser, page)
        n_images = browser.execute_script("return document.querySelectorAll('img').length;")
        assert n_images >= 1, f"{stem}: no figure on the page"
        assert "Profile" in text and "git" in text and "synthetic" in text, f"{stem}: provenance banner missing"
        prov = json.loads((REPO / "book" / "_site" / stem / "provenance.json").read_text())
        assert "Results shown:" in text and prov["git_sha"][:7] in text
        state = site.staleness(stem, prov)
        assert ("Stale results" in text) == state.stale, stem
        for changed in state.changed:
            assert changed in text, f"{stem}: the stale warning does not name {changed}"
        links = browser.execute_script("return Array.from(document.querySelectorAll('a')).map(a => a.href);")
        for suffix in (".ipynb", ".py"):
            found = [h for h in links if h.startswith("file://") and h.endswith(f"/{stem}{suffix}")]
            assert found and all(Path(h[len("file://"):]).stat().st_size > 0 for h in found), f"{stem}{suffix}"
        for download in {h[len("file://"):] for h in links if h.startswith("file://") and h.endswith(f"/{stem}.ipynb")}:
            text = Path(download).read_text()  # names the final results folder, never a staging or checkout path
            assert ".staging-" not in text and str(REPO) not in text and "source.ipynb" not in text, download
            assert f'"input_path": "notebooks/{stem}.py"' in text, download


def test_the_reproducibility_and_references_pages_cover_every_chapter_and_paper(browser):
    text = open_page(browser, HTML / "book" / "reproducibility.html")
    for stem in STEMS:
        prov = json.loads((REPO / "book" / "_site" / stem / "provenance.json").read_text())
        assert text.count(stem) >= 2 and prov["torch"] in text and prov["python"] in text, stem
    text = open_page(browser, HTML / "book" / "references.html")
    for title in ("MetaFuse", "Cross view fusion", "Learning to fuse"):
        assert title.lower() in text.lower(), title


def test_the_benchmarks_page_renders_the_benchmark_table():
    page = HTML / "book" / "benchmarks.html"
    _need(page.exists(), "no built site: run `make book` first")
    text = page.read_text()
    assert "<table" in text and "paper_value" in text  # the CSV's header row, rendered as a table
    assert "results//" not in text and "```{" not in text
    staged = (REPO / "book" / "_site" / "benchmarks.csv").read_text().splitlines()
    assert len(staged) >= 2 and staged[0].startswith("benchmark,metric,value,unit,device")
