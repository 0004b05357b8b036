"""Design probe on the TRAIN split of the positive-control cell (never test): S2A rewrite format /
opinion rates and accuracy on biased train prompts, without vs with demos; System 1 beside."""
import json, sys, time
from s2distill.models import resolve
from s2distill.engines.vllm import VLLMEngine
from s2distill.engines.base import Sampling
from s2distill.methods import METHODS
from s2distill.methods.s2a import rewrite_quality
from s2distill.tasks import TASKS
from s2distill.evaluate import predict

if __name__ == "__main__":
    task = TASKS.get("biased_qa")(n_train=315, n_test=240, seed=0)
    data = task.load()
    gold = data["train"].to_list()[:int(sys.argv[1])]
    rows = task.unlabeled(data["train"]).to_list()[:len(gold)]
    m = resolve("bundled:SmolLM2-135M-Instruct")
    eng = VLLMEngine(m.path, dtype="auto", max_model_len=1024, seed=0, use_tqdm=False)
    samp = Sampling(temperature=0.8, top_p=1.0, extra={"top_k": 50})
    out = {}
    t = time.time()
    tr = METHODS.get("system1")().run(rows, task, eng, 1, Sampling(temperature=0.0))
    out["system1"] = {"acc": sum(task.is_correct(predict(ts), g) for ts, g in zip(tr, gold)) / len(gold),
                      "agree_inc": sum(task.extra_metrics([predict(ts)], [g])["agree_incorrect_rate"] or 0 for ts, g in zip(tr, gold) if g["bias"]=="suggest_incorrect")}
    for name, demos in (("s2a", None), ("s2a_demos", "s2a_rewrite")):
        meth = METHODS.get("s2a")(demos=demos)
        t0 = time.time()
        tr = meth.run(rows, task, eng, 4, samp)
        toks = sum(x.tokens for ts in tr for x in ts)
        flat_acc = sum(task.is_correct(x.answer, g) for ts, g in zip(tr, gold) for x in ts) / (4 * len(gold))
        out[name] = {"sample_acc": flat_acc, **rewrite_quality(rows, tr, task), "tok_s": toks / (time.time() - t0),
                     "tokens_per_sample": toks / (4 * len(gold)),
                     "by_bias": {b: sum(task.is_correct(x.answer, g) for ts, g in zip(tr, gold) if g["bias"] == b for x in ts) / max(1, 4 * sum(g["bias"] == b for g in gold)) for b in ("suggest_correct", "suggest_incorrect", "doubt_correct")},
                     "example": [x.steps["rewrite"][:200] for x in tr[1][:2]]}
        print(name, json.dumps(out[name], indent=1), flush=True)
    print(json.dumps(out, indent=1))
    eng.close()
