"""TRL's SFTTrainer with the soft-target loss of ``losses/kd.py`` (``train=kd``).

Each training example carries, beside its prompt and completion, the teacher's top-k token ids
and log-probabilities at every completion token (``teacher_ids``, ``teacher_logprobs``: one row of
k per completion token, in order, as captured offline by the engine). SFTTrainer tokenizes and
labels the examples as for plain SFT; the collator here pads them as TRL does and stacks the
teacher rows of the batch; ``compute_loss`` takes the student's logits at the labelled positions
(completion tokens only: prompt and padding positions are -100) and adds the divergence.
"""

from __future__ import annotations

from typing import Any

from trl import SFTTrainer

from s2distill.losses.kd import combine, topk_divergence

TEACHER_COLUMNS = ("teacher_ids", "teacher_logprobs")


class TeacherCollator:
    """TRL's collator for the token columns, plus the teacher's rows stacked to (N, k)."""

    def __init__(self, base: Any) -> None:
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        teacher = {c: [row for ex in examples for row in ex[c]] for c in TEACHER_COLUMNS}
        batch = self.base([{k: v for k, v in ex.items() if k not in TEACHER_COLUMNS} for ex in examples])
        batch["teacher_ids"] = torch.tensor(teacher["teacher_ids"], dtype=torch.long)
        batch["teacher_logprobs"] = torch.tensor(teacher["teacher_logprobs"], dtype=torch.float32)
        return batch


class KDTrainer(SFTTrainer):
    """``kd``: ``alpha``, ``temperature``, ``divergence`` and ``beta`` (see ``losses/kd.py``)."""

    def __init__(self, *args: Any, kd: dict[str, Any], **kwargs: Any) -> None:
        self.kd = kd
        super().__init__(*args, **kwargs)
        self.data_collator = TeacherCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        self._signature_columns = [*self._signature_columns, *TEACHER_COLUMNS]  # keep them through the Trainer

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        inputs = dict(inputs)
        t_ids, t_lp = inputs.pop("teacher_ids"), inputs.pop("teacher_logprobs")
        labels = inputs.pop("labels")
        outputs = model(**inputs, use_cache=False)
        loss, ce, div = batch_loss(outputs.logits, labels, t_ids, t_lp, self.kd, num_items_in_batch)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes  # as TRL's SFT loss: DDP averages the gradients
        mode = "train" if model.training else "eval"
        self._metrics[mode]["ce"].append(ce)
        self._metrics[mode]["kd_divergence"].append(div)
        return (loss, outputs) if return_outputs else loss


def batch_loss(logits: Any, labels: Any, teacher_ids: Any, teacher_logprobs: Any, kd: dict[str, Any],
               num_items_in_batch: Any = None) -> tuple[Any, float, float]:
    """The KD loss of one batch, and its CE and divergence per completion token (for the log).

    ``logits`` (B, L, V), ``labels`` (B, L) with -100 on prompt and padding positions; the
    teacher's rows (N, k) follow the labelled tokens example by example, in order. Normalised as
    TRL's SFT loss (per completion token of the accumulated batch), so ``alpha = 1`` is SFT.
    """
    import torch
    import torch.nn.functional as F

    shifted = labels[:, 1:]
    mask = shifted != -100  # logits at p predict token p + 1; only completion tokens are labelled
    sel = logits[:, :-1][mask]  # (N, V), example by example, in token order
    if sel.shape[0] != teacher_ids.shape[0]:
        raise RuntimeError(f"KD batch: {sel.shape[0]} completion tokens but {teacher_ids.shape[0]} teacher rows: "
                           "the teacher was scored on a different tokenization of the completions")
    n_local = max(int(mask.sum()), 1)
    n = torch.as_tensor(num_items_in_batch if num_items_in_batch is not None else n_local).clamp(min=1)
    n = n.to(sel.device)
    ce_sum = F.cross_entropy(sel.float(), shifted[mask], reduction="sum")
    div_sum = topk_divergence(sel, teacher_ids, teacher_logprobs, kd["divergence"], kd.get("beta", 0.5),
                              kd["temperature"]).sum()
    loss = combine(ce_sum / n, div_sum / n, kd["alpha"], kd["temperature"])
    return loss, ce_sum.item() / n_local, div_sum.item() / n_local
