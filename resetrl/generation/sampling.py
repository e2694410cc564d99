"""Next-token sampling: temperature, then top-k, then top-p (nucleus), as transformers applies them.

Sorting the whole vocabulary of every row at every step (what a top-p filter does) costs as much as a
good part of a small model's forward pass on a CPU. Instead each row first looks at its `candidates`
most likely tokens: when they already hold the whole nucleus (or the top-k set), the row is sampled
from them exactly; only the other rows (very flat distributions) fall back to a full sort. Both paths
draw the same uniform number, so the result is an exact sample of the filtered distribution.
"""

from __future__ import annotations

import torch

from resetrl.generation.base import SamplingParams


def sample_next_tokens(logits: torch.Tensor, sampling: SamplingParams, candidates: int = 64) -> torch.Tensor:
    """One token per row of `logits` [B, V]: greedy when temperature is 0, else a sample of
    softmax(logits / temperature) restricted to the top-k tokens, then to the top-p nucleus."""
    if sampling.temperature <= 0:
        return logits.argmax(dim=-1)
    scores = logits.float() / sampling.temperature
    vocab = scores.shape[-1]
    uniform = torch.rand(scores.shape[0], device=scores.device)
    width = min(vocab, max(candidates, sampling.top_k))
    tokens, decided = _sample_sorted(scores, *torch.topk(scores, width, dim=-1), uniform, sampling)
    undecided = (~decided).nonzero().squeeze(-1)
    if undecided.numel():
        rows = scores.index_select(0, undecided)
        full, _ = _sample_sorted(rows, *torch.sort(rows, dim=-1, descending=True), uniform[undecided], sampling)
        tokens[undecided] = full
    return tokens


def _sample_sorted(scores: torch.Tensor, values: torch.Tensor, indices: torch.Tensor, uniform: torch.Tensor,
                   sampling: SamplingParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF sampling over the highest scores `values` (sorted descending, token ids `indices`).

    Returns the tokens and, per row, whether the sample is decided from these candidates alone: the
    kept set (top-k, then nucleus) must end inside them, or the uniform draw must land inside them."""
    width = values.shape[-1]
    vocab = scores.shape[-1]
    top_k = sampling.top_k if 0 < sampling.top_k < vocab else 0
    # Normaliser of the distribution the nucleus is taken from: all tokens, or the top-k ones only.
    if top_k:
        log_total = torch.logsumexp(values[:, :top_k], dim=-1, keepdim=True)
    else:
        log_total = torch.logsumexp(scores, dim=-1, keepdim=True)
    probs = torch.exp(values - log_total)
    if top_k:
        probs[:, top_k:] = 0.0
    cumulative = torch.cumsum(probs, dim=-1)
    if sampling.top_p < 1.0:
        # transformers' rule: drop a token once the mass of the tokens ranked above it reaches top_p.
        keep = (cumulative - probs) < sampling.top_p
    else:
        keep = torch.ones_like(probs, dtype=torch.bool)
    if top_k:
        keep[:, top_k:] = False
    # The kept set ends inside the candidates when the last one is dropped, when a top-k filter bounds
    # it (the candidates hold the top k) or when the candidates are the whole vocabulary.
    ends_inside = ~keep[:, -1]
    if top_k or width == vocab:
        ends_inside = torch.ones_like(ends_inside)
    if sampling.top_p < 1.0:
        target = uniform * (probs * keep).sum(dim=-1)
        decided = ends_inside
    else:  # all tokens kept (probabilities sum to 1): decided when the draw lands on a candidate
        target = uniform * torch.where(ends_inside, (probs * keep).sum(dim=-1), torch.ones_like(uniform))
        decided = ends_inside | (target < cumulative[:, -1])
    kept_cumulative = torch.cumsum(probs * keep, dim=-1)
    position = torch.searchsorted(kept_cumulative, target.unsqueeze(-1), right=True).squeeze(-1)
    # Guard against rounding at the top end: never step past the last kept candidate.
    last_kept = keep.sum(dim=-1).clamp(min=1) - 1
    position = torch.minimum(position, last_kept)
    return indices.gather(-1, position.unsqueeze(-1)).squeeze(-1), decided
