"""Top-p (nucleus) masking without sorting the vocabulary, for vLLM's CPU sampler.

vLLM 0.32 on CPU masks top-k/top-p logits in ``apply_top_k_top_p_pytorch``: with a top-p it sorts
every row over the whole vocabulary (49,152 tokens for SmolLM2) at every decoding step. The
nucleus is usually a few tokens, so the sort is mostly wasted. ``apply_top_k_top_p`` here gives
the same mask from each row's ``prefilter`` largest logits (``torch.topk``), and sorts the whole
row only where that cannot be decided:

vLLM keeps a token iff the probability mass of the tokens ranked above it is < p (its ascending
cumulative sum up to and including the token is > 1 - p; the largest token is always kept).
Probabilities are renormalised over the top-k tokens when a top-k is set. So if the ``prefilter``
largest tokens of a row already hold mass >= p, every token outside them has mass >= p above it
and is dropped: the nucleus lies inside the prefilter, and is read off its sorted values. A row
whose top-k (with ties at the k-th value, which vLLM keeps) fits in the prefilter is decided the
same way. Other rows (a flat distribution, p = 1, a top-k beyond the prefilter) take vLLM's own
function, and so do rows whose last kept logit ties the first dropped one: vLLM's sort orders
equal logits arbitrarily (not by index), so which tied token survives is its sort's choice, and
only its sort can reproduce it. With bf16 weights such ties are common (13% of rows on the bench
job). The masks then agree up to float rounding in the last bit of a cumulative sum exactly at
the boundary (vLLM sums ~49k ascending float32 values, this sums the few largest in descending
order); tests/test_fast_top_p.py checks them against vLLM's on random logits and checks that
the real engine gives the same seeded samples either way.
"""

from __future__ import annotations

from typing import Any

#: the largest logits per row examined before falling back to a full sort
DEFAULT_PREFILTER = 256


def apply_top_k_top_p(logits: Any, k: Any | None, p: Any | None, prefilter: int = DEFAULT_PREFILTER,
                      fallback: Any = None) -> Any:
    """vLLM's ``apply_top_k_top_p`` (same arguments, same in-place result: masked logits set to
    -inf), decided from each row's ``prefilter`` largest logits where that is exact."""
    import torch
    from vllm.v1.sample.ops import topk_topp_sampler as vs

    fallback = fallback or vs.apply_top_k_top_p_pytorch
    if p is None:  # top-k alone: vLLM's own path already avoids the sort on CPU
        return fallback(logits, k, p, allow_cpu_sync=True)
    rows, vocab = logits.shape
    width = min(int(prefilter), vocab)
    vals, idx = logits.topk(width, dim=-1)  # descending
    floor = torch.full((rows,), float("-inf"), dtype=vals.dtype, device=vals.device)
    decided = torch.ones(rows, dtype=torch.bool, device=vals.device)
    if k is not None:
        k = k.to(torch.long)
        limited = k < vocab
        inside = limited & (k <= width)
        kth = vals.gather(1, (k.clamp(1, width) - 1).unsqueeze(1)).squeeze(1)
        # ties at the k-th value are kept (vLLM masks only logits < the k-th); they must not
        # run past the prefilter
        fits = (k < width) & (vals[:, -1] < kth)
        if width == vocab:  # the prefilter is the whole row: every top-k fits
            fits = torch.ones_like(fits)
        inside &= fits
        floor = torch.where(inside, kth, floor)
        decided &= ~limited | inside
    cand = vals.masked_fill(vals < floor.unsqueeze(1), float("-inf"))
    # the normaliser: over the top-k tokens when a top-k applies (all inside the prefilter),
    # else over the whole row
    full_lse = torch.logsumexp(logits.float(), dim=-1)
    norm = torch.where(floor > float("-inf"), torch.logsumexp(cand.float(), dim=-1), full_lse)
    probs = (cand.float() - norm.unsqueeze(1)).exp()
    above = probs.cumsum(dim=-1) - probs  # mass ranked above each candidate
    p32 = p.to(torch.float32)
    decided &= (floor > float("-inf")) | (probs.sum(dim=-1) >= p32)
    keep = (above < p32.unsqueeze(1)) & (cand > float("-inf"))
    keep[:, 0] = True  # the largest token always stays (vLLM: "at least one")
    # vLLM's sort orders equal logits arbitrarily, so where the last kept token ties the first
    # dropped one (common with bf16 weights), which of them survives is its sort's choice: those
    # rows, and rows whose nucleus reaches the prefilter's end, take vLLM's own function
    n_keep = keep.sum(dim=1, keepdim=True)
    last = cand.gather(1, n_keep - 1)
    nxt = cand.gather(1, n_keep.clamp(max=width - 1))
    decided &= ((n_keep < width) & (nxt < last)).squeeze(1) | torch.tensor(width == vocab)
    out = torch.full_like(logits, float("-inf"))
    out.scatter_(1, idx, vals.masked_fill(~keep, float("-inf")))
    if not bool(decided.all()):
        rest = (~decided).nonzero().squeeze(1)
        out[rest] = fallback(logits[rest].clone(), None if k is None else k[rest], p[rest], allow_cpu_sync=True)
    return logits.copy_(out)


def install(prefilter: int = DEFAULT_PREFILTER) -> None:
    """Make vLLM's CPU sampler (in this process) mask top-p through ``apply_top_k_top_p`` above
    (vLLM's module-level function is what ``forward_cpu`` calls); installing twice stays one layer."""
    from vllm.v1.sample.ops import topk_topp_sampler as vs

    original = getattr(vs.apply_top_k_top_p, "__s2distill_original__", vs.apply_top_k_top_p)

    def patched(logits: Any, k: Any | None, p: Any | None) -> Any:
        if vs.HAS_TRITON:  # accelerators have their own kernels
            return original(logits, k, p)
        return apply_top_k_top_p(logits, k, p, prefilter)

    patched.__s2distill_original__ = original  # type: ignore[attr-defined]
    vs.apply_top_k_top_p = patched


def uninstall() -> None:
    from vllm.v1.sample.ops import topk_topp_sampler as vs

    vs.apply_top_k_top_p = getattr(vs.apply_top_k_top_p, "__s2distill_original__", vs.apply_top_k_top_p)
