"""The portable CPU numerics (mfbook/numerics.py): the runner gives every CPU chapter the pinned settings, whatever
the user's environment says, and under them what the hardware would otherwise choose no longer changes the bits."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mfbook import numerics, run_book
from mfbook.paths import REPO_ROOT

FINGERPRINT = ("import hashlib, json, torch; from mfbook import numerics; numerics.apply_in_process('cpu'); "
               "torch.use_deterministic_algorithms(True, warn_only=True); "
               "bits = hashlib.sha256(numerics._fingerprint_bits() + numerics._fingerprint_numpy_bits()).hexdigest(); "
               "print(json.dumps({**numerics.computed_numerics_fingerprint(), 'active': numerics.portable_active(), "
               "'bits': bits}))")


def fingerprint_in_subprocess(env: dict) -> dict:
    """The numerics fingerprint a fresh process computes with ``env`` on top of this one's (torch and numpy read their
    settings at start-up, so each setting needs its own process)."""
    out = subprocess.run([sys.executable, "-c", FINGERPRINT], cwd=REPO_ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def without_portable_settings() -> dict:
    """This process's environment minus every variable the portable mode sets (the test's own runner may set them)."""
    return {k: v for k, v in os.environ.items() if k not in numerics.portable_environment()}


def test_the_runner_starts_cpu_chapters_under_the_portable_settings_whatever_the_users_environment(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")  # a user's own choice (or a CI machine's) does not reach them
    monkeypatch.setenv("MKL_CBWR", "AVX512")
    env = run_book.kernel_variables(2, None, "cpu")
    assert env["ATEN_CPU_CAPABILITY"] == "default" and env["MKL_CBWR"] == "COMPATIBLE,STRICT"
    assert env["OMP_NUM_THREADS"] == "1" and env[numerics.MODE_ENV] == numerics.PORTABLE
    assert set(env.get("NPY_DISABLE_CPU_FEATURES", "").split()) == set(numerics.numpy_dispatch_targets())
    with run_book.kernel_environment(env):
        assert os.environ["ATEN_CPU_CAPABILITY"] == "default"
    assert os.environ["ATEN_CPU_CAPABILITY"] == "avx2"  # restored after the run


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the GPU branch of kernel_variables needs a CUDA device")
def test_gpu_chapters_keep_the_native_numerics():
    env = run_book.kernel_variables(4, None, "cuda")
    assert numerics.MODE_ENV not in env and "ATEN_CPU_CAPABILITY" not in env


def test_in_process_settings_turn_off_onednn_and_nnpack_and_use_one_thread():
    saved = (torch.get_num_threads(), torch.backends.mkldnn.enabled, torch._C._get_nnpack_enabled())
    try:
        numerics.apply_in_process("cpu")
        assert torch.get_num_threads() == 1
        assert not torch.backends.mkldnn.enabled and not torch._C._get_nnpack_enabled()
    finally:
        torch.set_num_threads(saved[0])
        torch.backends.mkldnn.enabled = saved[1]
        torch.backends.nnpack.set_flags(saved[2])


def test_under_the_portable_settings_the_hardware_choices_no_longer_change_the_bits():
    """Emulate a smaller CPU for oneMKL (its instructions limited to AVX2, as on a CPU without AVX512): under the
    portable settings the fingerprint's bits stay the same. The control, in the native mode, shows the emulation is
    real: there the same limit changes the bits (the AVX512 CPUs this test ran on; elsewhere it may not bite)."""
    smaller_cpu = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    base = {**without_portable_settings(), **numerics.portable_environment()}
    portable = fingerprint_in_subprocess(base)
    assert portable["active"] and portable["numerics_mode"] == "portable"
    assert fingerprint_in_subprocess({**base, **smaller_cpu})["bits"] == portable["bits"]
    if torch.backends.cpu.get_cpu_capability() == "AVX512":
        native = {**without_portable_settings(), "MKL_CBWR": "AVX512"}
        assert fingerprint_in_subprocess({**native, **smaller_cpu})["bits"] != fingerprint_in_subprocess(native)["bits"]


def test_the_fingerprint_memo_is_per_setting(tmp_path, monkeypatch):
    """The memo's name hashes the settings: the portable and the native mode never read each other's answer."""
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    native = numerics._fingerprint_memo_path()
    for key, value in numerics.portable_environment().items():
        monkeypatch.setenv(key, value)
    assert numerics._fingerprint_memo_path() != native


def test_record_says_what_was_in_effect():
    rec = numerics.record()
    assert rec["numerics_mode"] in ("portable", "native")
    assert {"torch_cpu_capability", "numpy", "mkl_cbwr", "openblas_coretype", "onednn", "nnpack"} <= set(rec)
