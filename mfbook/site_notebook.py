"""The executed notebook of a chapter as the site shows it and offers it for download (:func:`clean_notebook`,
:func:`relocate_notebook`; ``mfbook.site`` stages it). The results themselves are never changed: staging works on a
copy under ``book/_site/``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .paths import REPO_ROOT

HIDDEN_CELL_TAGS = ("parameters", "injected-parameters")  # papermill's cells: defaults and the values it injected
# What a progress bar writes to stderr (tqdm): "42%|████", "12.3it/s]", "1.5s/it]", "0/401 [00:00<?"
PROGRESS_PATTERN = re.compile(r"\d+%\||\bit/s[,\]]|\bs/it[,\]]|\d+/\d+ \[\d\d:\d\d")
STRAY_PATH_MARKERS = (".staging-", "PosixPath(")  # outputs that show where the runner wrote, not a result


def _is_progress_text(text: str) -> bool:
    """Whether a stderr text is only progress bars (and the blanks tqdm writes to clear them)."""
    pieces = [p for p in re.split(r"[\r\n]", text) if p.strip()]
    return all(PROGRESS_PATTERN.search(p) for p in pieces)


def _keep_output(output: dict) -> bool:
    if any(marker in json.dumps(output.get("data", output.get("text", ""))) for marker in STRAY_PATH_MARKERS):
        return False
    if output.get("output_type") == "stream" and output.get("name") == "stderr":
        text = "".join(output.get("text", ""))
        return not _is_progress_text(text)
    return True


def clean_notebook(nb: dict) -> dict:
    """The notebook as the site shows it (in place, and returned): papermill's parameter cells tagged
    ``remove-cell``; outputs that print a staging path or ``PosixPath(`` and stderr progress bars removed."""
    for cell in nb.get("cells", []):
        tags = cell.setdefault("metadata", {}).setdefault("tags", [])
        if any(t in tags for t in HIDDEN_CELL_TAGS) and "remove-cell" not in tags:
            tags.append("remove-cell")
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if _keep_output(o)]
    return nb


def _map_strings(obj, fn):
    """``obj`` (JSON: dicts, lists, strings) with ``fn`` applied to every string in it, keys left alone."""
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_strings(v, fn) for v in obj]
    if isinstance(obj, dict):
        return {k: _map_strings(v, fn) for k, v in obj.items()}
    return obj


def relocate_notebook(nb: dict, stem: str, final_dir: str, repo: Path = REPO_ROOT) -> dict:
    """The notebook (in place, and returned) with every trace of where the runner executed it replaced by where its
    results are: papermill's ``input_path`` becomes the source ``notebooks/<stem>.py``, ``output_path`` and the
    ``out_dir`` parameter (metadata and the injected parameters cell) the final folder ``final_dir`` instead of the
    staging folder ``…/<profile>/.staging-<stem>``, and the absolute path of the checkout the run executed in (read
    from those paths: a GPU machine's differs from this one's) or of this one is dropped from every string left, so
    the downloadable notebook names no machine's folders."""
    meta = nb.setdefault("metadata", {})
    papermill = meta.get("papermill") or {}
    params = papermill.get("parameters") or {}
    staging_rel = str(params.get("out_dir") or "").rstrip("/")
    staging_abs = str(Path(papermill["output_path"]).parent) if papermill.get("output_path") else ""
    pairs = []  # (old, new), longest first
    if staging_abs:
        pairs.append((staging_abs, final_dir))
        if staging_rel and staging_abs.endswith("/" + staging_rel):
            pairs.append((staging_abs[: -len(staging_rel)], ""))  # the checkout the run executed in, with its "/"
    if staging_rel:
        pairs.append((staging_rel, final_dir))
    pairs += [(str(Path(repo).resolve()) + "/", ""), (f".staging-{stem}", stem)]

    def rewrite(text: str) -> str:
        for old, new in pairs:
            text = text.replace(old, new)
        return text

    nb["cells"] = _map_strings(nb.get("cells", []), rewrite)
    meta.update(_map_strings({k: v for k, v in meta.items() if k != "papermill"}, rewrite))
    if papermill:
        papermill = _map_strings(papermill, rewrite)
        papermill["input_path"] = f"notebooks/{stem}.py"
        papermill["output_path"] = f"{final_dir}/{stem}.ipynb"
        if "out_dir" in papermill.get("parameters", {}):
            papermill["parameters"]["out_dir"] = final_dir
        meta["papermill"] = papermill
    return nb
