"""transformers ``generate`` engine: the fallback where vLLM is unavailable (and the bench baseline)."""

from __future__ import annotations

import logging
from typing import Any

from tqdm.auto import tqdm

from s2distill.engines.base import Chat, Completion, Sampling, TopK, resolve_dtype
from s2distill.errors import UserError

log = logging.getLogger(__name__)


class HFEngine:
    def __init__(
        self,
        model: str,
        dtype: str = "auto",
        seed: int = 0,
        batch_size: int = 16,
        device: str | None = None,
        use_tqdm: bool = True,
        chat_template_kwargs: dict[str, Any] | None = None,
        **_ignored: Any,  # vLLM-only options in a shared engine config
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model = model
        self.batch_size = int(batch_size)
        self.use_tqdm = use_tqdm
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = self.dtype = resolve_dtype(dtype, on_gpu=self.device.startswith("cuda"))
        torch_dtype = {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16,
                       "float32": torch.float32}.get(dtype, "auto")
        self.tok = AutoTokenizer.from_pretrained(model, padding_side="left")
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token  # generation only: padding is masked, never a label
        self.lm = AutoModelForCausalLM.from_pretrained(model, dtype=torch_dtype).to(self.device).eval()
        gen_eos = self.lm.generation_config.eos_token_id
        gen_eos = gen_eos if isinstance(gen_eos, list) else [gen_eos]
        self.eos_ids = {i for i in [self.tok.eos_token_id, *gen_eos] if i is not None}
        torch.manual_seed(seed)

    def generate(self, chats: list[Chat], n: int, sampling: Sampling, desc: str = "",
                 adapter: str | None = None) -> list[list[Completion]]:
        import torch

        if adapter is not None:
            raise UserError("the hf engine does not serve LoRA adapters (train.merge=true, or engine=vllm)")
        prompts = [self.tok.apply_chat_template(c, tokenize=False, add_generation_prompt=True,
                                                **self.chat_template_kwargs) for c in chats]
        if getattr(sampling, "seed", None) is not None:
            torch.manual_seed(sampling.seed)  # this call's samples depend on its seed alone
        out: list[list[Completion]] = []
        bar = tqdm(total=len(prompts), desc=desc or "hf generate", disable=not self.use_tqdm)
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            enc = self.tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            sample = sampling.temperature > 0
            gen_kw: dict[str, Any] = dict(
                max_new_tokens=sampling.max_tokens,
                num_return_sequences=n,
                do_sample=sample,
                pad_token_id=self.tok.pad_token_id,
            )
            if sample:
                gen_kw.update(temperature=sampling.temperature, top_p=sampling.top_p)
            with torch.inference_mode():
                seqs = self.lm.generate(**enc, **gen_kw)
            new = seqs[:, enc["input_ids"].shape[1] :]
            for i in range(len(batch)):
                comps = []
                for j in range(n):
                    ids = new[i * n + j].tolist()
                    length = len(ids)
                    for k, t in enumerate(ids):
                        if t in self.eos_ids:
                            length = k + 1  # the EOS token is generated, as vLLM counts it
                            break
                    text = self.tok.decode(ids[:length], skip_special_tokens=True)
                    comps.append(Completion(text, length))
                out.append(comps)
            bar.update(len(batch))
        bar.close()
        return out

    def score(self, sequences: list[list[int]], starts: list[int], top_k: int, desc: str = "") -> list[TopK]:
        """One forward pass per sequence (no padding to get wrong): top-k of the log-softmax."""
        import torch

        out = []
        for seq, start in tqdm(list(zip(sequences, starts)), desc=desc or "hf score", disable=not self.use_tqdm):
            with torch.inference_mode():
                logits = self.lm(torch.tensor([seq], device=self.device)).logits[0].float()
            # logits at position p - 1 predict token p
            lp = torch.log_softmax(logits[start - 1 : len(seq) - 1], dim=-1).topk(int(top_k), dim=-1)
            out.append(TopK(lp.indices.tolist(), lp.values.tolist()))
        return out

    def close(self) -> None:
        self.lm = None
