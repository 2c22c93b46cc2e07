"""Portable CPU numerics: the settings under which the smoke book computes the same bits on every x86-64 CPU.

Why. Small training runs are chaotic: a different last bit in one convolution of the warm-up grows into another
backbone, other heatmaps, other verdicts. Between two CPU models the book's CPU libraries pick different code for
the same call: ATen's vectorised kernels dispatch on the CPU's ISA (AVX512, AVX2, ...), oneDNN (convolutions) and
NNPACK (batched convolutions) choose their kernels and blockings from the ISA and the cache sizes, oneMKL (matrix
products) from the ISA, numpy from its own CPU-feature dispatch, OpenBLAS (numpy's and scipy's matrix products) from
the core type. Each such choice changes the order of float sums. Measured here (``tests/test_numerics.py`` and the
closing notes): the same backbone training step under ``ATEN_CPU_CAPABILITY=avx2`` instead of AVX512, or under
another ``MKL_CBWR`` branch, or another ``OPENBLAS_CORETYPE``, gives other bits.

What. A chapter on the CPU therefore runs with every one of those choices pinned to a code path that every x86-64
CPU that numpy supports (x86-64-v2: SSE4.2) executes alike, and with one thread:

* :data:`PORTABLE_ENV` (set by the book runner for the chapters' kernels, before torch and numpy load):
  ``ATEN_CPU_CAPABILITY=default`` (ATen's kernels compiled for the baseline ISA), ``MKL_CBWR=COMPATIBLE,STRICT``
  (oneMKL's conditional numerical reproducibility: one SSE2 code path on Intel and AMD, independent of memory
  alignment), ``OPENBLAS_CORETYPE=Nehalem`` (SSE4.2 kernels, numpy's own baseline), single-threaded OpenMP, MKL and
  OpenBLAS, glibc's libm without its FMA/AVX2 variants (``GLIBC_TUNABLES``); plus ``NPY_DISABLE_CPU_FEATURES`` naming every numpy dispatch target this CPU has
  (:func:`numpy_dispatch_targets`), so numpy runs its baseline code.
* :func:`apply_in_process` (called by every chapter at its start): one torch thread, oneDNN off
  (``torch.backends.mkldnn``: convolutions take ATen's own im2col + MKL path) and NNPACK off.

Cost: the smoke book (2 cores) takes about as long as before (its tensors are tiny; see the README's times).
The full profile on a GPU is not affected: its tables are compared by their science, not by their bits.

:func:`record` says what was in effect; it goes into every chapter's ``provenance.json``, and the numerics fingerprint
(:func:`numerics_fingerprint`) is computed under the same settings.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path

import torch

from mfcore.files import atomic_write_bytes

from .paths import cache_dir

PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",  # ATen's vectorised kernels at the baseline ISA, whatever the CPU offers
    "MKL_CBWR": "COMPATIBLE,STRICT",  # oneMKL: the same instructions on Intel and AMD, whatever the alignment
    "OPENBLAS_CORETYPE": "Nehalem",  # numpy/scipy OpenBLAS kernels at SSE4.2 (numpy's baseline, x86-64-v2)
    "OMP_NUM_THREADS": "1",  # one thread everywhere: a sum split over threads depends on their number
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    # glibc's libm picks FMA/FMA4/AVX2 variants of exp, log, sin, ... where the CPU has them (other last bits than its
    # SSE2 code, measured: masking them changes the fingerprint); masked, every x86-64 CPU runs the SSE2 code
    "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-FMA,-FMA4,-AVX2",
}
MODE_ENV = "MFBOOK_NUMERICS"  # "portable" in a chapter's kernel started by the book runner on the CPU
PORTABLE = "portable"


def numpy_dispatch_targets() -> list[str]:
    """numpy's runtime-dispatched CPU features (beyond its compiled baseline) that this CPU has: disabling them makes
    numpy run its baseline code, the same on every CPU (numpy refuses to disable a feature it does not dispatch)."""
    try:
        from numpy._core import _multiarray_umath as umath  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import _multiarray_umath as umath
    have = getattr(umath, "__cpu_features__", {})
    return [f for f in getattr(umath, "__cpu_dispatch__", []) if have.get(f)]


def portable_environment() -> dict[str, str]:
    """The environment of a chapter's kernel on the CPU: :data:`PORTABLE_ENV`, numpy's dispatch targets disabled, and
    :data:`MODE_ENV` naming the mode (so that the chapter records it and the fingerprint is taken under it)."""
    env = dict(PORTABLE_ENV)
    targets = numpy_dispatch_targets()
    if targets:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(targets)
    env[MODE_ENV] = PORTABLE
    return env


def apply_in_process(device) -> None:
    """The in-process half of the portable settings, for a chapter (or the adapt command) computing on ``device``: on
    the CPU one torch thread, oneDNN and NNPACK off; on CUDA nothing (GPU tables are not compared bit for bit)."""
    if torch.device(device).type != "cpu":
        return
    torch.set_num_threads(1)
    torch.backends.mkldnn.enabled = False
    torch.backends.nnpack.set_flags(False)


def portable_active() -> bool:
    """Whether this process runs under the portable settings: the environment the runner gives (ATen at the default
    capability, MKL's compatible branch) and :func:`apply_in_process`'s flags."""
    return (os.environ.get(MODE_ENV) == PORTABLE
            and torch.backends.cpu.get_cpu_capability() == "DEFAULT"
            and os.environ.get("MKL_CBWR", "").startswith("COMPATIBLE")
            and not torch.backends.mkldnn.enabled
            and not torch._C._get_nnpack_enabled()
            and torch.get_num_threads() == 1)


def record() -> dict:
    """What was in effect, for ``provenance.json``: the mode, torch's CPU capability, the pinned library branches."""
    import numpy

    return {
        "numerics_mode": PORTABLE if portable_active() else "native",
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "numpy": numpy.__version__,
        "mkl_cbwr": os.environ.get("MKL_CBWR", ""),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", ""),
        "onednn": bool(torch.backends.mkldnn.enabled),
        "nnpack": bool(torch._C._get_nnpack_enabled()),
    }


FINGERPRINT_VERSION = 2  # raise when :func:`numerics_fingerprint`'s computation changes (2: numpy and LAPACK bits)
FINGERPRINT_KEYS = {"numerics_fingerprint", "torch_cpu_capability", "cpu_model", "numerics_mode", "numpy"}


def _fingerprint_memo_path() -> Path:
    """Where :func:`numerics_fingerprint` keeps its answer for this machine, these libraries and these settings: the
    cache folder, under a name hashed from everything the answer depends on (fingerprint version, torch and numpy
    versions and builds, the numerics mode and its environment, the CPU capability torch dispatches to, the CPU model,
    the host), so that another machine, library or setting never reads it."""
    import numpy

    env = "|".join(f"{k}={os.environ.get(k, '')}" for k in sorted({*PORTABLE_ENV, MODE_ENV,
                                                                     "NPY_DISABLE_CPU_FEATURES"}))
    ident = "|".join((str(FINGERPRINT_VERSION), torch.__version__, str(torch.version.git_version), numpy.__version__,
                      str(portable_active()), env, torch.backends.cpu.get_cpu_capability(), cpu_model(),
                      platform.node(), platform.machine()))
    return cache_dir() / "fingerprint" / f"{hashlib.sha256(ident.encode()).hexdigest()[:24]}.json"


_IN_PROCESS: dict[str, dict] = {}  # memo path -> fingerprint, for this process


def numerics_fingerprint() -> dict:
    """:func:`computed_numerics_fingerprint`, computed once per machine, libraries and settings: its answer is kept in
    the cache folder (:func:`_fingerprint_memo_path`) and in this process, since every chapter and every cache lookup
    asks (computing it costs tens of milliseconds, up to 2-5 s where it has to import torch._inductor). A missing or
    unreadable memo is recomputed; a change of settings within the process (:func:`apply_in_process`) is another
    memo."""
    path = _fingerprint_memo_path()
    if str(path) in _IN_PROCESS:
        return _IN_PROCESS[str(path)]
    try:
        memo = json.loads(path.read_text())
        if set(memo) == FINGERPRINT_KEYS:
            _IN_PROCESS[str(path)] = memo
            return memo
    except (OSError, ValueError):
        pass
    value = computed_numerics_fingerprint()
    try:
        atomic_write_bytes(path, (json.dumps(value, sort_keys=True) + "\n").encode())
    except OSError:
        pass  # a read-only cache folder: the answer is still right, only not kept
    _IN_PROCESS[str(path)] = value
    return value


numerics_fingerprint.cache_clear = _IN_PROCESS.clear  # forget this process's answers (tests)


def computed_numerics_fingerprint() -> dict:
    """A fingerprint of this machine's float arithmetic as the chapters use it (one torch thread, deterministic
    kernels, the numerics mode of :mod:`mfbook.numerics`): the sha256 of the bits of a small fixed computation that
    exercises what the book computes with (torch: conv2d forward and backward, batch norm, a transposed convolution,
    matmul, softmax, grid_sample, five Adam steps, an SVD and a least-squares solve; numpy: exp, log, tanh, sin,
    matrix products, SVD and a solve) on seeded data, hashed together with the torch and numpy versions, the numerics
    mode and the CPU capability torch dispatches to.

    Under the portable mode (the book runner's CPU chapters) every x86-64 CPU gives the same fingerprint with the same
    torch and numpy: ``tests/test_results.py`` then compares every table exactly. Another torch or numpy, or the
    native mode, gives another fingerprint, and the comparison falls back to the tables that do not depend on
    training plus the invariants of the trained ones.

    Uses its own generators (the chapter's random streams are untouched) and restores torch's thread count and
    determinism flag; tens of milliseconds, computed once per machine and settings (:func:`numerics_fingerprint`).
    """
    import numpy

    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    if not deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        with torch.random.fork_rng(devices=[]):  # module initialisers draw from torch's global generator: restore it
            data = _fingerprint_bits() + _fingerprint_numpy_bits()
    finally:
        torch.set_num_threads(threads)
        if not deterministic:
            torch.use_deterministic_algorithms(False)
    rec = record()
    h = hashlib.sha256(f"v{FINGERPRINT_VERSION}|torch {torch.__version__}|numpy {numpy.__version__}|"
                       f"{rec['numerics_mode']}|{rec['torch_cpu_capability']}|".encode() + data)
    return {"numerics_fingerprint": h.hexdigest()[:16], "torch_cpu_capability": rec["torch_cpu_capability"],
            "cpu_model": cpu_model(), "numerics_mode": rec["numerics_mode"], "numpy": numpy.__version__}


def _fingerprint_bits() -> bytes:
    """The float32 bits of the torch part of :func:`numerics_fingerprint`'s computation: five Adam steps of a tiny
    heatmap network (a batch of 16, where NNPACK would take the convolutions), then an SVD and a least-squares solve
    (LAPACK, as triangulation uses)."""
    g = torch.Generator().manual_seed(20200613)
    x = torch.randn(16, 3, 16, 16, generator=g)
    target = torch.rand(16, 5, 8, 8, generator=g)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ConvTranspose2d(8, 8, 4, stride=2, padding=1),
        torch.nn.Conv2d(8, 5, 1), torch.nn.MaxPool2d(2))
    with torch.no_grad():
        for prm in net.parameters():
            prm.copy_(torch.randn(prm.shape, generator=g) * 0.2)
    mix = torch.randn(64, 64, generator=g) * 0.05  # a NaiveFuse-like dense map between flattened 8² heatmaps
    grid = torch.rand(16, 8, 8, 2, generator=g) * 2 - 1
    opt = torch.optim.Adam([*net.parameters(), mix.requires_grad_()], lr=1e-2)
    bits = []
    for _ in range(5):
        opt.zero_grad()
        heat = net(x)  # (16, 5, 8, 8)
        fused = (heat.flatten(2) @ mix).view_as(heat)
        warped = torch.nn.functional.grid_sample(fused, grid, align_corners=False)
        soft = torch.softmax(warped.flatten(2) / 0.2, dim=-1).view_as(heat)
        loss = (torch.nn.functional.mse_loss(soft, target)
                + torch.einsum("bjhw,bjhw->", fused, fused) * 1e-4)
        loss.backward()
        opt.step()
        bits.append(loss.detach().reshape(1))
    bits += [p.detach().reshape(-1) for p in net.parameters()] + [mix.detach().reshape(-1)]
    a = torch.randn(24, 12, generator=g, dtype=torch.float64)
    b = torch.randn(24, 3, generator=g, dtype=torch.float64)
    bits += [torch.linalg.svdvals(a).float(), torch.linalg.lstsq(a, b).solution.float().reshape(-1),
             torch.exp(a).log1p().float().reshape(-1)]
    return torch.cat(bits).to(torch.float32).numpy().tobytes()


def _fingerprint_numpy_bits() -> bytes:
    """The float64 bits of the numpy part of :func:`numerics_fingerprint`'s computation: elementwise functions
    (numpy's own dispatched loops), matrix products, an SVD and a solve (OpenBLAS / LAPACK) on seeded data."""
    import numpy as np

    rng = np.random.default_rng(20200613)
    a = rng.normal(size=(48, 48))
    b = rng.normal(size=(48, 4))
    a32 = a.astype(np.float32)
    parts = [np.exp(a), np.log1p(np.abs(a)), np.sin(a), np.tanh(a), (a @ a.T), np.linalg.svd(a, compute_uv=False),
             np.linalg.solve(a + 48 * np.eye(48), b), np.exp(a32).astype(np.float64), np.log(np.abs(a32) + 1).astype(np.float64),
             (a32 @ a32.T).astype(np.float64), np.array([np.mean(a), np.std(a), np.quantile(a, 0.975)])]
    return b"".join(np.ascontiguousarray(p, dtype=np.float64).tobytes() for p in parts)


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`), for the reader."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"
