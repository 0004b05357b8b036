"""Soft-target knowledge distillation on the teacher's top-k log-probabilities (``train=kd``).

    loss = α · CE(kept answer) + (1 − α) · T² · D(p_teacher,T ‖ p_student,T)

over completion tokens only (Hinton et al. 2015; the T² keeps the soft term's gradient scale
independent of T). The teacher's distribution is stored sparsely, as its top-k token ids and
log-probabilities at each completion position (captured once through the engine, offline), so
``D`` is computed on that support: the teacher's top-k log-probs and the student's logits at the
same ids are both renormalised over the k tokens (at temperature T) and compared there, as
DistillKit's sparse KD does. With k covering almost all of the teacher's mass this is the full
divergence; with small k it is the divergence of the conditional distributions on the top-k.

``D`` is TRL's generalized Jensen–Shannon divergence (GKD, Agarwal et al. 2024), which covers
``forward_kl`` (β = 0: KL(teacher ‖ student), Hinton/DistilBERT), ``reverse_kl`` (β = 1:
KL(student ‖ teacher), MiniLLM) and ``jsd`` with the configured β in between.
"""

from __future__ import annotations

import os
from typing import Any

DIVERGENCES = ("forward_kl", "reverse_kl", "jsd")


def divergence_beta(divergence: str, beta: float) -> float:
    """The generalized-JSD β that ``divergence`` means (``jsd`` keeps the configured β)."""
    if divergence not in DIVERGENCES:
        raise ValueError(f"unknown divergence {divergence!r} (known: {', '.join(DIVERGENCES)})")
    return {"forward_kl": 0.0, "reverse_kl": 1.0}.get(divergence, float(beta))


def topk_divergence(student_logits: Any, teacher_ids: Any, teacher_logprobs: Any, divergence: str = "forward_kl",
                    beta: float = 0.5, temperature: float = 1.0) -> Any:
    """``D`` between teacher and student at each of N positions, on the teacher's top-k support.

    ``student_logits``: (N, V) at N completion positions; ``teacher_ids`` (N, k) int and
    ``teacher_logprobs`` (N, k) float: the teacher's top-k at the same positions. Returns (N,).
    """
    import torch

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gkd import GKDTrainer

    student = torch.gather(student_logits, -1, teacher_ids.long().to(student_logits.device))
    # TRL's loss divides both by T and log-softmaxes: on the k ids this renormalises both there
    per_token = GKDTrainer.generalized_jsd_loss(student.float(), teacher_logprobs.float().to(student.device),
                                                beta=divergence_beta(divergence, beta), temperature=temperature,
                                                reduction="none")
    return per_token.sum(-1)


def combine(ce: Any, divergence: Any, alpha: float, temperature: float) -> Any:
    """``α·CE + (1−α)·T²·D``: α = 1 is plain SFT, α = 0 soft targets only."""
    return alpha * ce + (1.0 - alpha) * temperature**2 * divergence
