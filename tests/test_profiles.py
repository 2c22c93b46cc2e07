import dataclasses

import pytest
import torch
from conftest import load_script

from mfcore import profiles


def test_both_profiles_exist_and_fill_every_section():
    assert set(profiles.PROFILES) == {"smoke", "full"}
    for p in profiles.PROFILES.values():
        for f in dataclasses.fields(p):
            if dataclasses.is_dataclass(getattr(p, f.name)):
                assert dataclasses.asdict(getattr(p, f.name))


def test_full_profile_uses_the_papers_shapes():
    full = profiles.get_profile("full")
    assert full.studio.image_px == 256 and full.studio.heatmap_px == 64  # MetaFuse Sec. 5.1
    assert full.studio.heatmap_sigma_px == 2.0
    assert full.metafuse.finetune_lr == 5e-3 and full.metafuse.outer_lr == 1e-3
    assert full.metafuse.shots == (50, 100, 200, 500)
    assert full.pictorial.grid_bins == 15 and full.pictorial.rpsm_bins == 2 and full.pictorial.rpsm_stages == 10


def test_heatmaps_are_a_quarter_of_the_image_in_every_profile():
    for p in profiles.PROFILES.values():
        assert p.studio.image_px == 4 * p.studio.heatmap_px
        assert p.metafuse.target_train_frames >= max(p.metafuse.shots) or p.name == "smoke"


@pytest.mark.parametrize("bad", ["nonsense", "", "SMOKE", None, 3])
def test_unknown_profile_names_the_value_and_the_choices(bad):
    with pytest.raises(ValueError) as err:
        profiles.get_profile(bad)
    assert repr(bad) in str(err.value) and "full" in str(err.value) and "smoke" in str(err.value)


def test_device_choices():
    assert profiles.resolve_device("cpu") == torch.device("cpu")
    assert profiles.resolve_device("auto").type in {"cpu", "cuda"}
    with pytest.raises(ValueError, match="'gpu'.*auto, cpu, cuda"):
        profiles.resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="'cuda'.*not available"):
        profiles.resolve_device("cuda")


def test_the_structure_dry_run_takes_the_full_profiles_switches_and_keeps_the_smoke_sizes():
    """tools/structure_dry_run.py: smoke-sized chapters that reach the code only the full structure reaches."""
    tool = load_script("tools/structure_dry_run.py")
    smoke, full = profiles.get_profile("smoke"), profiles.get_profile("full")
    dry = tool.structured_smoke()
    for section, name in tool.STRUCTURE:
        assert getattr(getattr(dry, section), name) == getattr(getattr(full, section), name), (section, name)
    assert dry.metafuse.fusion_seeds == (0, 1, 2) and dry.trainable_fusion.sweep_seeds == 0
    assert dry.studio == smoke.studio and dry.metafuse.meta_iterations == smoke.metafuse.meta_iterations
    assert dry.trainable_fusion.steps == smoke.trainable_fusion.steps and dry.name == "smoke"
    assert profiles.get_profile("smoke") is smoke  # importing the tool patches nothing
