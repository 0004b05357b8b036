"""losses/kd.py against divergences computed by hand (plain math, not torch) on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch

from s2distill.losses.kd import combine, divergence_beta, topk_divergence

# one position, a vocabulary of 5, the teacher's top-2 are ids 3 and 1 with p = 0.75, 0.25
T_IDS = torch.tensor([[3, 1]])
T_LP = torch.log(torch.tensor([[0.75, 0.25]]))
# the student: equal logits at ids 3 and 1 (uniform there); other ids are off the support
S_LOGITS = torch.tensor([[5.0, 0.3, -2.0, 0.3, 9.0]])
PT, PS = [0.75, 0.25], [0.5, 0.5]


def kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q))


def jsd(beta: float, t: list[float] = PT, s: list[float] = PS) -> float:
    m = [beta * a + (1 - beta) * b for a, b in zip(t, s)]
    return beta * kl(t, m) + (1 - beta) * kl(s, m)


def test_forward_and_reverse_kl_match_hand_values() -> None:
    fwd = topk_divergence(S_LOGITS, T_IDS, T_LP, "forward_kl")
    rev = topk_divergence(S_LOGITS, T_IDS, T_LP, "reverse_kl")
    assert fwd.shape == (1,)
    assert fwd.item() == pytest.approx(kl(PT, PS), abs=1e-6)  # 0.1308: KL(teacher || student)
    assert rev.item() == pytest.approx(kl(PS, PT), abs=1e-6)  # 0.1438: KL(student || teacher)
    assert fwd.item() != pytest.approx(rev.item(), abs=1e-3)  # the two directions really differ here


@pytest.mark.parametrize("beta", [0.0, 0.25, 0.5, 1.0])
def test_generalized_jsd_matches_hand_values(beta: float) -> None:
    d = topk_divergence(S_LOGITS, T_IDS, T_LP, "jsd", beta=beta).item()
    # beta = 0 and 1 are the KL limits (forward, reverse), as in GKD
    want = kl(PT, PS) if beta == 0 else kl(PS, PT) if beta == 1 else jsd(beta)
    assert d == pytest.approx(want, abs=1e-6)


def test_temperature_softens_both_sides() -> None:
    t = 2.0
    pt = [v ** (1 / t) for v in PT]
    pt = [v / sum(pt) for v in pt]  # teacher at T=2: p^(1/2) renormalised
    d = topk_divergence(S_LOGITS, T_IDS, T_LP, "forward_kl", temperature=t).item()
    assert d == pytest.approx(kl(pt, PS), abs=1e-6)
    # the combined loss scales the soft term by T^2: alpha = 0 gives T^2 * D
    assert combine(torch.tensor(7.0), torch.tensor(d), alpha=0.0, temperature=t).item() == pytest.approx(4 * d)


def test_alpha_one_is_plain_cross_entropy_and_alpha_mixes() -> None:
    ce, d = torch.tensor(1.234), torch.tensor(0.5)
    assert combine(ce, d, alpha=1.0, temperature=3.0).item() == pytest.approx(1.234)
    assert combine(ce, d, alpha=0.25, temperature=1.0).item() == pytest.approx(0.25 * 1.234 + 0.75 * 0.5)


def test_identical_distributions_have_zero_divergence_and_gradient_flows() -> None:
    logits = torch.tensor([[0.0, math.log(0.25), 0.0, math.log(0.75), 4.0]], requires_grad=True)
    for div in ("forward_kl", "reverse_kl", "jsd"):
        assert topk_divergence(logits, T_IDS, T_LP, div).item() == pytest.approx(0.0, abs=1e-6)
    loss = topk_divergence(S_LOGITS.clone().requires_grad_(), T_IDS, T_LP).sum()
    loss.backward()


def test_several_positions_are_scored_each() -> None:
    logits = torch.cat([S_LOGITS, S_LOGITS])
    ids = torch.tensor([[3, 1], [1, 3]])  # the second position's teacher prefers id 1
    lp = torch.log(torch.tensor([[0.75, 0.25], [0.75, 0.25]]))
    d = topk_divergence(logits, ids, lp)
    assert d.tolist() == pytest.approx([kl(PT, PS), kl(PT, PS)], abs=1e-6)
    skewed = torch.tensor([[0.0, 0.0, 0.0, math.log(3.0), 0.0]] * 2)  # student 0.75 on id 3, 0.25 on id 1
    d2 = topk_divergence(skewed, ids, lp)
    assert d2[0].item() == pytest.approx(0.0, abs=1e-6) and d2[1].item() == pytest.approx(kl(PT, [0.25, 0.75]), abs=1e-6)


def test_unknown_divergence_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown divergence"):
        divergence_beta("kl", 0.5)
    assert divergence_beta("jsd", 0.3) == 0.3 and divergence_beta("forward_kl", 0.3) == 0.0


# -- the trainer's batch loss: completion tokens only -----------------------------------------------
def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two examples: prompt 3 + completion 2 tokens, and prompt 2 + completion 1 token + 2 padding."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g)
    labels = torch.tensor([[-100, -100, -100, 4, 2], [-100, -100, 6, -100, -100]])
    ids = torch.tensor([[4, 0], [2, 1], [6, 3]])  # one teacher row per completion token, in order
    lp = torch.log(torch.tensor([[0.6, 0.4], [0.9, 0.1], [0.5, 0.5]]))
    return logits, labels, ids, lp


def test_batch_loss_counts_completion_tokens_only() -> None:
    from s2distill.kd_trainer import batch_loss

    logits, labels, ids, lp = _batch()
    kd = {"alpha": 0.3, "temperature": 2.0, "divergence": "forward_kl"}
    loss, ce, div = batch_loss(logits, labels, ids, lp, kd)
    # by hand: the positions predicting the labelled tokens are (0, 2), (0, 3) and (1, 1)
    pos = [(0, 2, 4), (0, 3, 2), (1, 1, 6)]
    ce_hand = sum(-torch.log_softmax(logits[b, p], -1)[tok].item() for b, p, tok in pos) / 3
    div_hand = 0.0
    for row, (b, p, _) in enumerate(pos):
        s = torch.softmax(logits[b, p, ids[row]] / 2.0, -1).tolist()
        t = torch.softmax(lp[row] / 2.0, -1).tolist()
        div_hand += kl(t, s)
    div_hand /= 3
    assert ce == pytest.approx(ce_hand, abs=1e-5) and div == pytest.approx(div_hand, abs=1e-5)
    assert loss.item() == pytest.approx(0.3 * ce_hand + 0.7 * 4 * div_hand, abs=1e-5)
    # prompt and padding positions carry no loss: changing their logits changes nothing ...
    other = logits.clone()
    other[0, 0] += 5.0
    other[0, 1] -= 3.0
    other[1, 2:] += 7.0  # the last completion token's successor and the padding
    assert batch_loss(other, labels, ids, lp, kd)[0].item() == pytest.approx(loss.item(), abs=1e-6)
    # ... while a completion position's do
    other[1, 1, 6] += 1.0  # (a shift of all logits would leave the softmax as it is)
    assert batch_loss(other, labels, ids, lp, kd)[0].item() != pytest.approx(loss.item(), abs=1e-4)


def test_batch_loss_refuses_misaligned_teacher_rows_and_alpha_one_is_sft() -> None:
    from s2distill.kd_trainer import batch_loss

    logits, labels, ids, lp = _batch()
    with pytest.raises(RuntimeError, match="3 completion tokens but 2 teacher rows"):
        batch_loss(logits, labels, ids[:2], lp[:2], {"alpha": 0.5, "temperature": 1.0, "divergence": "jsd"})
    loss, ce, _ = batch_loss(logits, labels, ids, lp, {"alpha": 1.0, "temperature": 1.0, "divergence": "jsd"})
    sft = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1), ignore_index=-100)
    assert loss.item() == pytest.approx(sft.item(), abs=1e-6) and ce == pytest.approx(sft.item(), abs=1e-6)
