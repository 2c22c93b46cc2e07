"""The house rules of the code, read from the source: the science (``mfcore``) imports only itself, downward, and never
the book machinery (``mfbook``); the machinery imports the science; neither package has an import loop. Imports inside
functions count as much as those at the top of a module."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mfcore", "mfbook")


def _path(package: str, module: str) -> Path:
    """The file of ``module`` ("studio", "calibration" (a package: its __init__), "calibration.frame")."""
    base = REPO / package / Path(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _exists(package: str, module: str) -> bool:
    return _path(package, module).exists() and module != "__init__"


def imports_of(package: str, module: str) -> set[tuple[str, str]]:
    """(package, module) pairs that ``package/module.py`` imports from the two packages, anywhere in the file
    (modules of a subpackage are named ``sub.module``; the subpackage itself, i.e. its __init__, ``sub``)."""
    path = _path(package, module)
    tree = ast.parse(path.read_text())
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]  # the module's own package
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level >= 1:  # from . import x / from .x import y / from .. import x
                parent = here[:len(here) - (node.level - 1)] if node.level > 1 else here
                base = package
                prefix = ".".join(parent + (node.module.split(".") if node.module else []))
                names = [prefix] if node.module else [".".join(parent + [a.name]) for a in node.names]
                if node.module:  # from .x import y: y may itself be a module of the subpackage x
                    names += [f"{prefix}.{a.name}" for a in node.names if _exists(base, f"{prefix}.{a.name}")]
            elif node.module in PACKAGES:
                base, names = node.module, [a.name for a in node.names]
            elif (node.module or "").split(".")[0] in PACKAGES:
                base, names = node.module.split(".")[0], [".".join(node.module.split(".")[1:])]
            else:
                continue
            found.update((base, n) for n in names if n and _exists(base, n))
            if base != package or not names:
                found.add((base, "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PACKAGES:
                    found.add((parts[0], ".".join(parts[1:]) if len(parts) > 1 else "__init__"))
    found.discard((package, module))
    return found


def modules(package: str) -> list[str]:
    """Every module of ``package``, subpackages included ("calibration" for calibration/__init__.py)."""
    out = []
    for p in sorted((REPO / package).rglob("*.py")):
        parts = p.relative_to(REPO / package).with_suffix("").parts
        if parts == ("__init__",) or "__pycache__" in parts or parts[-1] == "__main__":
            continue
        out.append(".".join(parts[:-1]) if parts[-1] == "__init__" else ".".join(parts))
    return out


def graph() -> dict[tuple[str, str], set[tuple[str, str]]]:
    return {(pkg, m): imports_of(pkg, m) for pkg in PACKAGES for m in modules(pkg)}


def find_cycle(edges: dict) -> list | None:
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt[1] == "__init__":
                continue
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_loop_in_either_package():
    cycle = find_cycle(graph())
    assert cycle is None, "import loop: " + " → ".join(f"{p}.{m}" for p, m in cycle)


def test_no_science_module_imports_the_machinery():
    offenders = {f"mfcore.{m}": sorted(f"{p}.{n}" for p, n in deps if p == "mfbook")
                 for (pkg, m), deps in graph().items() if pkg == "mfcore"}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_cycle_finder_and_the_import_reader_see_what_they_should(tmp_path, monkeypatch):
    assert find_cycle({("a", "x"): {("a", "y")}, ("a", "y"): {("a", "x")}}) == [("a", "x"), ("a", "y"), ("a", "x")]
    assert find_cycle({("a", "x"): {("a", "y")}, ("a", "y"): set()}) is None
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
    (tmp_path / "mfcore" / "geometry.py").write_text("")
    (tmp_path / "mfbook" / "cache.py").write_text("")
    (tmp_path / "mfcore" / "x.py").write_text("def f():\n    from mfbook import cache\n    from . import geometry\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    assert imports_of("mfcore", "x") == {("mfbook", "cache"), ("mfbook", "__init__"), ("mfcore", "geometry")}


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_longer_than_one_concept(package):
    """About 450 lines at most, unless the module is one concept (listed here with the reason)."""
    one_concept = {"mfcore/trainable_fusion/": "Tekin's two-stream network, its data and training",
                   "mfcore/epipolar.py": "chapter 1's epipolar geometry of fusion weights",
                   "mfcore/fusion.py": "Eq. (1)-(2): NaiveFuse and AffineFuse with its kernels",
                   "mfcore/studio.py": "the rigs: real sensors, their person-centred views, and the book's rig file"}
    files = [p for p in (REPO / package).rglob("*.py") if "__pycache__" not in p.parts]
    listed = lambda name: any(name == k or (k.endswith("/") and name.startswith(k)) for k in one_concept)  # noqa: E731
    long = {name: n for p in files if (n := len(p.read_text().splitlines())) > 450
            and not listed(name := p.relative_to(REPO).as_posix())}
    assert not long, long
