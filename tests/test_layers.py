"""The house rules of the code, read from the source: the science (``mfcore``) imports only itself, downward, and never
the book machinery (``mfbook``); the machinery imports the science; neither package has an import loop. Imports inside
functions count as much as those at the top of a module."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("mfcore", "mfbook")


def imports_of(package: str, module: str) -> set[tuple[str, str]]:
    """(package, module) pairs that ``package/module.py`` imports from the two packages, anywhere in the file."""
    tree = ast.parse((REPO / package / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:  # from . import x / from .x import y
                base = package
                names = [node.module.split(".")[0]] if node.module else [a.name for a in node.names]
            elif node.module in PACKAGES:
                base, names = node.module, [a.name for a in node.names]
            elif (node.module or "").split(".")[0] in PACKAGES:
                base, names = node.module.split(".")[0], [node.module.split(".")[1]]
            else:
                continue
            found.update((base, n) for n in names if (REPO / base / f"{n}.py").exists())
            if base != package or not names:
                found.add((base, "__init__"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PACKAGES:
                    found.add((parts[0], parts[1] if len(parts) > 1 else "__init__"))
    found.discard((package, module))
    return found


def graph() -> dict[tuple[str, str], set[tuple[str, str]]]:
    return {(pkg, p.stem): imports_of(pkg, p.stem) for pkg in PACKAGES for p in sorted((REPO / pkg).glob("*.py"))}


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
    one_concept = {"mfcore/motion.py": "the motion-capture converter of three sources and its sampler",
                   "mfcore/render.py": "the GPU renderer",
                   "mfcore/trainable_fusion/": "Tekin's two-stream network, its data and training",
                   "mfcore/pictorial.py": "triangulation, PSM and RPSM (one inference family)",
                   "mfcore/epipolar.py": "chapter 1's epipolar geometry of fusion weights",
                   "mfcore/fusion.py": "Eq. (1)-(2): NaiveFuse and AffineFuse with its kernels",
                   "mfcore/calibration.py": "readers and writers of six calibration formats under one conventions table",
                   "mfcore/studio.py": "the rigs: real sensors, their person-centred views, and the book's rig file",
                   "mfbook/run_book.py": "the batch runner"}
    long = {f"{package}/{p.name}": n for p in (REPO / package).glob("*.py")
            if (n := len(p.read_text().splitlines())) > 450 and f"{package}/{p.name}" not in one_concept}
    assert not long, long
