"""Exact MAP states of a tree-shaped model: max-product (Viterbi) message passing in log space, leaves to root,
then back-tracking the argmax."""

from __future__ import annotations

from typing import Callable

import torch

from .. import skeleton
from .limbs import _limbs

Tensor = torch.Tensor


MessageFn = Callable[[int, Tensor], tuple[Tensor, Tensor]]


def _dense_messages(log_pairwise: Tensor) -> MessageFn:
    """Messages from a dense (B, L, S_parent, S_child) log pairwise table."""
    def message(limb: int, energy_child: Tensor) -> tuple[Tensor, Tensor]:
        return (log_pairwise[:, limb] + energy_child[:, None, :]).max(-1)
    return message


def max_product_tree(log_unary: Tensor, log_pairwise: Tensor | MessageFn, parents=skeleton.PARENTS) -> Tensor:
    """Exact MAP states of a tree model by max-product in log space, (B, J, S) → (B, J) state indices.

    Maximises Σ_j log_unary[b, j, s_j] + Σ_l log_pairwise[b, l, s_parent, s_child] over all state choices, l running
    over the (parent, child) limbs of ``parents`` in child order. ``log_pairwise`` is a (B or 1, L, S, S) tensor or a
    function ``(limb, energy_child (B, S)) -> (max (B, S), argmax (B, S))`` that computes the message to the parent
    without the table. Messages go from the leaves to the root, then the argmax is back-tracked from the root.
    """
    limbs = _limbs(parents)
    if log_unary.dim() != 3 or log_unary.shape[1] != len(parents):
        raise ValueError(f"log_unary must be (B, J={len(parents)}, S), got {tuple(log_unary.shape)}")
    if isinstance(log_pairwise, Tensor):
        S = log_unary.shape[2]
        if log_pairwise.dim() != 4 or log_pairwise.shape[1:] != (len(limbs), S, S):
            raise ValueError(f"log_pairwise must be (B, L={len(limbs)}, S={S}, S={S}), got {tuple(log_pairwise.shape)}")
        message = _dense_messages(log_pairwise)
    else:
        message = log_pairwise
    J = log_unary.shape[1]
    energy = [log_unary[:, j] for j in range(J)]  # (B, S) each: unary + messages from the subtree
    back = {}
    for limb in reversed(range(len(limbs))):  # children after parents: reversed order is leaves first
        p, c = limbs[limb]
        best, arg = message(limb, energy[c])
        energy[p] = energy[p] + best
        back[c] = arg  # (B, S_parent): the child's best state for every parent state
    state = [None] * J
    root = next(j for j, p in enumerate(parents) if p < 0)
    state[root] = energy[root].argmax(-1)
    for p, c in limbs:
        state[c] = back[c].gather(1, state[p][:, None])[:, 0]
    return torch.stack(state, dim=1)
