"""Summary of a deploy/gpu_check.sh run: training speed, pass@k, and the GPU's base evaluation paired with the
CPU's (the precondition study's record of the same problems and n).

    python deploy/gpu_check_summary.py OUT_DIR

Sampling on another device draws other random numbers, so the two evaluations agree only up to sampling noise:
per problem, the GPU's count of correct samples minus the CPU's, over its binomial standard deviation, has
variance about 1 when nothing but noise separates them, and far above 1 when the GPU path samples differently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from agpo.passk import paired_difference
from rlvr.evaluate import load_results

CPU_BASE = Path(__file__).resolve().parents[1] / "docs/results/passk_precondition_record/base/eval_test_hard.json"


def main(out: Path) -> None:
    run = json.loads((out / "agpo_run.json").read_text())
    steps, seconds = run["steps"], run["train_runtime_s"]
    print(
        f"training: {steps} steps in {seconds:.1f} s, {seconds / steps:.2f} s/step; reward first/last "
        f"{run['reward_first']:.3f} / {run['reward_last']:.3f}"
    )
    for name in ("eval_base.json", "eval_agpo.json"):
        for r in load_results(out / name):
            k = max(r.curve)
            print(f"{r.label}: pass@1 {r.curve[1]:.3f}, pass@{k} {r.curve[k]:.3f} [{r.low[k]:.2f}, {r.high[k]:.2f}]")
    gpu, cpu = load_results(out / "eval_base.json")[0], load_results(CPU_BASE)[0]
    if (gpu.n, len(gpu.counts)) != (cpu.n, len(cpu.counts)):
        print(f"no CPU pairing: the CPU record holds {len(cpu.counts)} problems at n = {cpu.n}")
        return
    a, b = np.array(gpu.counts, dtype=float), np.array(cpu.counts, dtype=float)
    for k in (1, gpu.n):
        d = paired_difference([gpu.counts], [cpu.counts], gpu.n, cpu.n, k)
        print(f"base, GPU minus CPU: pass@{k} {d.mean:+.3f} [{d.low:+.3f}, {d.high:+.3f}]")
    p = (a + b) / (2 * gpu.n)
    sd = np.sqrt(2 * gpu.n * p * (1 - p))
    z = (a - b)[sd > 0] / sd[sd > 0]
    print(
        f"base, per-problem counts: correlation {np.corrcoef(a, b)[0, 1]:.3f}; (GPU - CPU) / binomial sd over "
        f"{z.size} problems: mean {z.mean():+.2f}, variance {z.var():.2f} (noise alone: 0, 1)"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python deploy/gpu_check_summary.py OUT_DIR")
    main(Path(sys.argv[1]))
