"""The sort-free top-p mask gives vLLM's own mask (vLLM's function is the reference)."""

from __future__ import annotations

import pytest
import torch

from s2distill.engines import fast_top_p

vs = pytest.importorskip("vllm.v1.sample.ops.topk_topp_sampler")
VOCAB = 49152


def reference(logits, k, p):
    return vs.apply_top_k_top_p_pytorch(logits.clone(), k, p, allow_cpu_sync=True)


def counted_fallback(calls):
    def fallback(logits, k, p, allow_cpu_sync=True):
        calls.append(logits.shape[0])
        return vs.apply_top_k_top_p_pytorch(logits, k, p, allow_cpu_sync=allow_cpu_sync)
    return fallback


def assert_same(ours, ref):
    assert torch.equal(torch.isinf(ours), torch.isinf(ref)), "masks differ"
    kept = ~torch.isinf(ref)
    assert torch.equal(ours[kept], ref[kept])


@pytest.mark.parametrize("scale", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("top_p", [0.5, 0.9, 0.95])
def test_top_p_mask_equals_vllms_on_peaked_rows_without_a_sort(scale, top_p):
    g = torch.Generator().manual_seed(int(scale * 100 + top_p * 10))
    logits = torch.randn(48, VOCAB, generator=g) * scale
    p = torch.full((48,), top_p)
    calls = []
    ours = fast_top_p.apply_top_k_top_p(logits.clone(), None, p, fallback=counted_fallback(calls))
    assert_same(ours, reference(logits, None, p))
    if scale >= 8:  # the nucleus fits in 256 tokens: every row decided without vLLM's sort
        assert calls == []


def test_flat_rows_p_one_and_large_top_k_fall_back_to_vllm():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, VOCAB, generator=g) * 8
    logits[1] = torch.randn(VOCAB, generator=g) * 0.1  # flat: the prefilter holds far less than p
    p = torch.tensor([0.95, 0.95, 1.0, 0.9, 0.9, 0.9])
    k = torch.tensor([VOCAB, VOCAB, VOCAB, 50, 1000, 1])
    calls = []
    ours = fast_top_p.apply_top_k_top_p(logits.clone(), k, p, fallback=counted_fallback(calls))
    assert_same(ours, reference(logits, k, p))
    assert calls == [3]  # rows 1 (flat), 2 (p = 1) and 4 (top-k 1000 > 256) only
    assert (~torch.isinf(ours[5])).sum() == 1  # top-k 1 keeps the argmax alone


def test_ties_at_the_kth_value_are_kept_as_vllm_keeps_them():
    logits = torch.zeros(2, VOCAB)
    logits[:, :10] = torch.tensor([5.0, 4, 4, 4, 3, 3, 3, 3, 2, 2])
    p = torch.tensor([0.99, 0.99])
    k = torch.tensor([3, 6])  # the 3rd and the 6th values are tied with their neighbours
    ours = fast_top_p.apply_top_k_top_p(logits.clone(), k, p)
    assert_same(ours, reference(logits, k, p))
    assert (~torch.isinf(ours)).sum(dim=1).tolist() == [4, 8]


def test_install_routes_vllms_sampler_through_the_fast_mask_and_uninstall_restores_it():
    before = vs.apply_top_k_top_p  # an engine started earlier in this process may have installed it
    original = getattr(before, "__s2distill_original__", before)
    fast_top_p.uninstall()
    assert vs.apply_top_k_top_p is original
    try:
        fast_top_p.install(prefilter=64)
        assert vs.apply_top_k_top_p is not original
        logits = torch.randn(4, 1000) * 6
        p = torch.full((4,), 0.9)
        assert_same(vs.apply_top_k_top_p(logits.clone(), None, p), reference(logits, None, p))
        fast_top_p.install(prefilter=64)  # twice: still one layer over vLLM's function
        assert vs.apply_top_k_top_p.__s2distill_original__ is original
        fast_top_p.uninstall()
        assert vs.apply_top_k_top_p is original
    finally:
        vs.apply_top_k_top_p = before


def test_a_nucleus_boundary_inside_tied_logits_takes_vllms_sort():
    # bf16 weights give many equal logits; vLLM's sort orders them arbitrarily, so where the
    # boundary cuts a tie only its own function can say which tied tokens survive
    g = torch.Generator().manual_seed(3)
    logits = (torch.randn(64, VOCAB, generator=g) * 8).to(torch.bfloat16).float()
    p = torch.full((64,), 0.95)
    calls = []
    ours = fast_top_p.apply_top_k_top_p(logits.clone(), None, p, fallback=counted_fallback(calls))
    assert_same(ours, reference(logits, None, p))
    tied = torch.zeros(1, 1000)
    tied[0, :6] = torch.tensor([5.0, 3.0, 3.0, 3.0, 3.0, 1.0])  # the boundary falls among the 3.0s
    one = []
    fast_top_p.apply_top_k_top_p(tied.clone(), None, torch.tensor([0.5]), fallback=counted_fallback(one))
    assert one == [1]


def test_ties_running_past_the_prefilter_fall_back():
    logits = torch.full((1, 1000), -5.0)
    logits[0, :12] = 2.0  # twelve tokens tied at the top: a top-k of 8 keeps all twelve in vLLM
    k, p = torch.tensor([8]), torch.tensor([0.99])
    calls = []
    ours = fast_top_p.apply_top_k_top_p(logits.clone(), k, p, prefilter=10, fallback=counted_fallback(calls))
    assert_same(ours, reference(logits, k, p))
    assert calls == [1] and (~torch.isinf(ours)).sum() == 12


@pytest.mark.slow
def test_real_engine_gives_the_same_samples_with_and_without_vllms_sort(vllm_engine, monkeypatch):
    from s2distill.engines.base import Sampling

    calls = []
    real = fast_top_p.apply_top_k_top_p
    monkeypatch.setattr(fast_top_p, "apply_top_k_top_p", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    questions = ["Name a fruit that is yellow.", "What is 7 times 8?", "Write one sentence about the sea.",
                 "Is a whale a fish? Explain briefly.", "Give a synonym for happy.", "Where is Kyoto?"]
    chats = [[{"role": "user", "content": q}] for q in questions]
    sampling = Sampling(temperature=0.8, top_p=0.95, max_tokens=48, seed=11)
    before = vs.apply_top_k_top_p
    try:
        fast_top_p.install()  # as the engine does at start (undone by any engine started with 0)
        fast = vllm_engine.generate(chats, 4, sampling)
        assert calls, "the engine's sampler did not go through engines/fast_top_p.py"
        fast_top_p.uninstall()
        sort = vllm_engine.generate(chats, 4, sampling)  # vLLM's whole-vocabulary sort
    finally:
        vs.apply_top_k_top_p = before
    assert [[c.text for c in row] for row in fast] == [[c.text for c in row] for row in sort]
    assert len({c.text for row in fast for c in row}) > len(questions)  # sampled, not one text per chat
