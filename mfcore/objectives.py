"""The readings of MetaFuse's training objective that chapter 4c compares (its plan, registered before the full runs).

The paper gives Eq. (3) as an MSE between the fused and the ground-truth heatmaps (Sec. 4.1) and applies a softmax with
temperature T = 0.2 to every channel of the fused heatmap (Sec. 5.1), without saying whether the loss sees it; its Eq.
(1) is a plain sum, while the Cross View Fusion code mixes the own view at 0.4 and the others at 0.6 (:mod:`mfcore.fusion`).
Each :class:`Variant` fixes the three choices that follow, and every training of the book can run under any of them
(the same meta-training, meta-testing and whole-pool training, the same frames, steps and rates):

* ``"a"`` **mix-MSE** (the book's reading in chapters 3-4): the reference's mix, MSE against the peak-1 Gaussian before
  any softmax (:func:`mfcore.fusion.member_mse`);
* ``"b"`` **sum-softmax**: the plain sum of Eq. (1), the T = 0.2 softmax over the pixels of every channel inside the
  loss, MSE against the target normalised the same way, both carrying the target's mass so that the loss keeps the
  scale of (a) (:func:`member_softmax_mse`; without that scale the loss is about 1/Z² smaller, which Adam ignores but
  the inner SGD step of Eq. (4)-(5) does not);
* ``"c"`` **mix-MSE with a free amplitude**: (a) with ω = s·ω̃, ``s`` a learnable scalar that adapts with θ in the
  inner step and at meta-test (:class:`mfcore.fusion.AffineFuse` ``scaled=True``).

Two more keys keep (a)'s objective and change only how meta-training runs, for chapter 4c's controls of it:
``"a-paper"`` meta-trains in the paper's regime (``profile.controls``: at least 20× the task updates of the book's
meta-training, on a larger pool of dome frames), ``"a-second"`` with the second-order terms of Eq. (6).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import Tensor

from . import fusion


def member_softmax_mse(fused: Tensor, target: Tensor, views=None,
                       temperature: float = fusion.DEFAULT_TEMPERATURE) -> Tensor:
    """:func:`mfcore.fusion.softmax_mse` for M members at once: fused, target (M, B, V, J, H, W) -> (M,), member m's
    ``mean((Σy · softmax(fused / T) − y)²)`` over its frames, the views ``views`` (all if None), joints and pixels."""
    if fused.shape != target.shape or fused.dim() != 6:
        raise ValueError(f"fused {tuple(fused.shape)} and target {tuple(target.shape)} must both be (M, B, V, J, H, W)")
    if views is not None:
        idx = [int(v) for v in views]
        fused, target = fused[:, :, idx], target[:, :, idx]
    y = target.float().flatten(-2)
    mass = y.sum(-1, keepdim=True)
    p = fusion.sharpen(fused, temperature).flatten(-2)
    return (mass * p - y).square().flatten(1).mean(1)


@dataclass(frozen=True)
class Variant:
    """One reading of the objective: the mix of Eq. (1) (``mix``), whether ω carries a free amplitude (``scaled``), the
    per-member loss (``objective``: (fused, target, target_views) -> (M,)) and the names meta-testing moves."""

    key: str
    name: str
    mix: str
    scaled: bool
    objective: Callable[..., Tensor]
    description: str
    regime: str = "book"  # meta-training's sizes: "book" (profile.metafuse) or "paper" (profile.controls)
    first_order: bool | None = None  # meta-training's order: None the profile's (metafuse.first_order)

    def finetuned_names(self, model) -> tuple[str, ...] | None:
        """What meta-testing moves (Sec. 4.3): θ (and the amplitude ``s`` under (c)) for AffineFuse / MetaFuse, every
        weight for NaiveFuse (None)."""
        if not isinstance(model, fusion.AffineFuse):
            return None
        return ("theta", "omega_scale") if model.scaled else ("theta",)


VARIANTS: dict[str, Variant] = {
    "a": Variant("a", "mix-MSE", "reference", False, fusion.member_mse,
                 "0.4 own + 0.6 others (the Cross View Fusion code's mix), MSE against the peak-1 Gaussian"),
    "b": Variant("b", "sum-softmax", "sum", False, member_softmax_mse,
                 "own + Σ W x (Eq. (1)), T = 0.2 softmax per channel inside the loss, against the normalised target"),
    "c": Variant("c", "mix-MSE, free amplitude", "reference", True, fusion.member_mse,
                 "(a) with ω = s·ω̃, the amplitude s learned with θ"),
    "a-paper": Variant("a-paper", "mix-MSE, the paper's meta-training regime", "reference", False, fusion.member_mse,
                       "(a) meta-trained with ≥ 20× the task updates on a larger dome pool", regime="paper"),
    "a-second": Variant("a-second", "mix-MSE, second-order MAML", "reference", False, fusion.member_mse,
                        "(a) meta-trained with the second-order terms of Eq. (6)", first_order=False),
}
OBJECTIVE_VARIANTS = ("a", "b", "c")  # the three readings of the objective (the others change the meta-training)
DEFAULT_VARIANT = "a"


def get_variant(key: str) -> Variant:
    """The :class:`Variant` named ``key`` ("a", "b" or "c"); a clear error for any other."""
    if key not in VARIANTS:
        raise ValueError(f"unknown objective variant {key!r}; choose one of {sorted(VARIANTS)} "
                         f"({', '.join(f'{k}: {v.name}' for k, v in VARIANTS.items())})")
    return VARIANTS[key]
