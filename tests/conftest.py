import pytest


@pytest.fixture(autouse=True)
def _fresh_target_memo():
    """Every test assembles its own target sets: :func:`mfcore.meta.target_data` keeps the last ones in memory, and
    tests replace what they are assembled from (monkeypatched heatmaps, other cache folders)."""
    from mfcore import meta

    meta.clear_target_memo()
    yield
    meta.clear_target_memo()
