import shutil
import warnings
from pathlib import Path

import pytest
import torch

from mfbook import cache
from mfcore import backbone, fewshot, pretrained


@pytest.fixture()
def tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    return tmp_path


def test_builds_once_then_reuses(tmp_cache):
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(5.0)}

    a = cache.cached("demo", {"n": 5}, build)
    b = cache.cached("demo", {"n": 5}, build)
    assert torch.equal(a["x"], b["x"]) and len(calls) == 1
    cache.cached("demo", {"n": 6}, build)  # another key is another entry
    assert len(calls) == 2 and len(list(tmp_cache.glob("demo-*.pt"))) == 2


def test_corrupt_entry_is_detected_and_rebuilt(tmp_cache):
    cache.cached("demo", {"n": 1}, lambda: {"x": torch.ones(3)})
    (path,) = tmp_cache.glob("demo-*.pt")
    path.write_bytes(path.read_bytes()[:50])  # truncated file
    with pytest.warns(UserWarning, match="invalid"):
        out = cache.cached("demo", {"n": 1}, lambda: {"x": torch.full((3,), 2.0)})
    assert torch.equal(out["x"], torch.full((3,), 2.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(cache.cached("demo", {"n": 1}, lambda: {"x": torch.zeros(3)})["x"], torch.full((3,), 2.0))


def test_tampered_contents_fail_the_content_hash(tmp_cache):
    cache.cached("demo", {"n": 2}, lambda: {"x": torch.ones(3)})
    (path,) = tmp_cache.glob("demo-*.pt")
    entry = torch.load(path, weights_only=True)
    entry["tensors"]["x"] = torch.zeros(3)
    torch.save(entry, path)
    with pytest.warns(UserWarning, match="hash mismatch"):
        out = cache.cached("demo", {"n": 2}, lambda: {"x": torch.full((3,), 7.0)})
    assert torch.equal(out["x"], torch.full((3,), 7.0))


def test_code_hash_changes_with_the_source(tmp_cache):
    assert cache.code_hash(("geometry",)) != cache.code_hash(("geometry", "metrics"))


def test_code_hash_covers_every_module_imported_transitively(tmp_path, monkeypatch):
    # a imports b at module level (absolute), b imports c inside a function (relative); d is unrelated
    (tmp_path / "a.py").write_text("from mfcore import b\n")
    (tmp_path / "b.py").write_text("def f():\n    from . import c\n    return c\n")
    (tmp_path / "c.py").write_text("X = 1\n")
    (tmp_path / "d.py").write_text("import torch\n")
    monkeypatch.setattr(cache, "_MFCORE_DIR", tmp_path)
    assert cache.code_closure(("a",)) == ("a", "b", "c") and cache.code_closure(("d",)) == ("d",)
    before = cache.code_hash(("a",))
    (tmp_path / "c.py").write_text("X = 2\n")  # a change two imports away is a new entry
    assert cache.code_hash(("a",)) != before
    before_d = cache.code_hash(("d",))
    (tmp_path / "b.py").write_text("Y = 0\n")
    assert cache.code_hash(("d",)) == before_d


def test_code_hash_covers_a_package_with_all_its_files_and_its_imports(tmp_path, monkeypatch):
    # package p (files __init__ and part) imports top-level module c from a function (``from .. import c``) and its own
    # file relatively (``from . import part``); top-level a imports the package by a dotted name
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "__init__.py").write_text("from . import part\n")
    (tmp_path / "p" / "part.py").write_text("def f():\n    from .. import c\n    return c\n")
    (tmp_path / "c.py").write_text("X = 1\n")
    (tmp_path / "a.py").write_text("from mfcore.p.part import f\n")
    monkeypatch.setattr(cache, "_MFCORE_DIR", tmp_path)
    assert cache.code_closure(("a",)) == ("a", "c", "p") and cache.code_closure(("p.part",)) == ("c", "p")
    before = cache.code_hash(("a",))
    (tmp_path / "p" / "part.py").write_text("def f():\n    from .. import c\n    return c  # edited\n")
    assert cache.code_hash(("a",)) != before  # a change in any file of the package is a new entry
    with pytest.raises(ValueError, match="no mfcore module or package named 'zz'"):
        cache.code_hash(("zz",))


def test_build_must_return_tensors(tmp_cache):
    with pytest.raises(TypeError):
        cache.cached("demo", {"n": 3}, lambda: {"x": [1, 2]})


def test_scalar_tensors_such_as_batchnorm_counters_are_cached(tmp_cache):
    out = cache.cached("demo", {"n": 4}, lambda: {"count": torch.tensor(7), "x": torch.ones(2)})
    again = cache.cached("demo", {"n": 4}, lambda: {"count": torch.tensor(0), "x": torch.zeros(2)})
    assert out["count"].item() == 7 and again["count"].item() == 7


def test_a_loaded_entry_is_kept_in_memory_until_its_file_changes(tmp_cache, monkeypatch):
    cache.clear_memo()
    cache.cached("demo", {"n": 8}, lambda: {"x": torch.arange(4.0)})
    loads = []
    real_load = torch.load
    monkeypatch.setattr(cache.torch, "load", lambda *a, **k: loads.append(1) or real_load(*a, **k))
    for _ in range(3):
        assert torch.equal(cache.cached("demo", {"n": 8}, lambda: {"x": torch.zeros(4)})["x"], torch.arange(4.0))
    assert loads == []  # built by this process: never read back
    cache.clear_memo()
    cache.cached("demo", {"n": 8}, lambda: {"x": torch.zeros(4)})
    cache.cached("demo", {"n": 8}, lambda: {"x": torch.zeros(4)})
    assert loads == [1]  # read and verified once, then from memory
    (path,) = tmp_cache.glob("demo-*.pt")
    entry = real_load(path, weights_only=True)
    entry["tensors"]["x"] = torch.full((4,), 5.0)
    entry["content_hash"] = cache._content_hash(entry["tensors"])
    torch.save(entry, path)  # another process rewrote the entry: the memory copy is stale
    assert torch.equal(cache.cached("demo", {"n": 8}, lambda: {"x": torch.zeros(4)})["x"], torch.full((4,), 5.0))


def test_memory_budget_zero_turns_the_memo_off(tmp_cache, monkeypatch):
    cache.clear_memo()
    monkeypatch.setenv("MFCORE_CACHE_MEMORY_GB", "0")
    cache.cached("demo", {"n": 9}, lambda: {"x": torch.ones(2)})
    assert not cache._MEMO


# ----------------------------------------------------------------------------------------------------------------------
# the cache keys of the real entries cover what the result depends on and nothing more (a copy of the sources is edited)

REPO = Path(__file__).resolve().parents[1]
DOWNSTREAM_OF_THE_HEATMAPS = {"maml", "fewshot", "targets", "oracle", "epipolar", "pictorial", "metrics", "claims",
                              "trainable_fusion", "adapt"}


@pytest.fixture()
def sources(tmp_path, monkeypatch):
    """A copy of mfcore/ and mfbook/ that the cache hashes instead of the real one."""
    for pkg in ("mfcore", "mfbook"):
        shutil.copytree(REPO / pkg, tmp_path / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_MFCORE_DIR", tmp_path / "mfcore")
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


@pytest.mark.parametrize("entry, code, own_module, left_out", [
    ("backbone", backbone.BACKBONE_CODE, "backbone", DOWNSTREAM_OF_THE_HEATMAPS | {"fusion"}),
    ("heatmaps", backbone.HEATMAPS_CODE, "backbone", DOWNSTREAM_OF_THE_HEATMAPS | {"fusion"}),
    ("fusion", pretrained.FUSION_CODE, "pretrained", DOWNSTREAM_OF_THE_HEATMAPS - {"maml"}),
    ("fused", fewshot.FUSED_CODE, "fewshot", {"oracle", "epipolar", "pictorial", "claims", "trainable_fusion", "adapt"}),
])
def test_a_cache_key_covers_its_own_code_and_not_the_oracle_nor_the_book(sources, entry, code, own_module, left_out):
    closure = set(cache.code_closure(code))
    assert own_module in closure and not closure & left_out, (entry, sorted(closure & left_out))
    before = cache.code_hash(code)
    _edit(sources / "mfcore" / "oracle.py", '"""The epipolar oracle', '"""The epipolar oracle (edited)')
    _edit(sources / "mfbook" / "chapter.py", "def banner(self) -> str:", "def banner(self) -> str:  # edited")
    assert cache.code_hash(code) == before, f"editing the oracle or the book's banner rebuilds the {entry} entries"
    _edit(sources / "mfcore" / f"{own_module}.py", "from __future__", "# edited\nfrom __future__")
    assert cache.code_hash(code) != before, f"editing {own_module}.py must give the {entry} entries a new key"



@pytest.mark.parametrize("package", ["motion", "render"])
def test_the_backbone_key_covers_every_file_of_the_motion_and_render_packages(sources, package):
    """``motion`` and ``render`` are packages of small modules: a change in any one of their files (the sampler, the
    tile tracer, ...) gives the backbone and heatmaps entries, whose ``code`` names the package, a new key."""
    files = sorted((sources / "mfcore" / package).glob("*.py"))
    assert len(files) >= 5, files
    for f in files:
        before = cache.code_hash(backbone.BACKBONE_CODE)
        f.write_text(f.read_text() + "# edited\n")
        assert cache.code_hash(backbone.BACKBONE_CODE) != before, f"editing {f.name} left the backbone key unchanged"

def test_the_content_hash_of_chunks_hashed_in_parallel_sees_every_byte_whatever_the_thread_count(monkeypatch):
    monkeypatch.setattr(cache, "HASH_CHUNK_BYTES", 64)  # 1000 float32 = 4000 bytes: 63 chunks
    tensors = {"b": torch.arange(1000.0), "a": torch.ones(3, dtype=torch.float16), "empty": torch.zeros(0)}
    hashes = set()
    for workers in (1, 4):
        monkeypatch.setattr(cache, "_hash_workers", lambda: workers)
        hashes.add(cache._content_hash(tensors))
    assert len(hashes) == 1
    changed = dict(tensors, b=tensors["b"].clone())
    changed["b"][999] = -1.0  # the last byte of the last chunk
    assert cache._content_hash(changed) not in hashes
    assert cache._content_hash({"a": tensors["b"], "b": tensors["a"]}) not in hashes  # names are part of it
