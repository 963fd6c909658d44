"""The verl plugin: loaded by verl's own entry-point discovery, dispatched by verl's own compute_advantage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from verl import DataProto
from verl.trainer.ppo import core_algos
from verl.trainer.ppo.ray_trainer import compute_advantage

from agpo.advantages import compute_advantages
from agpo.verl_plugin import PLUGIN_ESTIMATORS, ensure_registered


def batch(num_groups: int = 6, group_size: int = 5, length: int = 7, seed: int = 0) -> tuple[DataProto, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n = num_groups * group_size
    scores = torch.randint(0, 2, (n,), generator=g).float()
    lengths = torch.randint(1, length + 1, (n,), generator=g)
    mask = (torch.arange(length)[None, :] < lengths[:, None]).float()
    token_rewards = torch.zeros(n, length)
    token_rewards[torch.arange(n), lengths - 1] = scores  # outcome reward on the last response token
    order = torch.randperm(n, generator=g)  # verl batches need not keep groups together
    uids = np.array([f"prompt-{i // group_size}" for i in range(n)], dtype=object)[order.numpy()]
    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards[order], "response_mask": mask[order]},
        non_tensors={"uid": uids},
    )
    return data, scores[order]


def test_entry_point_registered_the_estimators_on_import() -> None:
    # A fresh interpreter: only verl's own entry-point discovery can have registered them there.
    code = (
        "import verl; from verl.trainer.ppo import core_algos as c; "
        f"print(all(n in c.ADV_ESTIMATOR_REGISTRY for n in {PLUGIN_ESTIMATORS!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip().endswith("True"), result.stdout + result.stderr
    ensure_registered()


@pytest.mark.parametrize("name", PLUGIN_ESTIMATORS)
def test_verl_dispatch_returns_what_agpo_computes(name: str) -> None:
    data, scores = batch()
    algorithm = OmegaConf.create({"adv_estimator": name, "gamma": 1.0, "lam": 1.0})
    out = compute_advantage(data, adv_estimator=name, num_repeat=5, config=algorithm)
    ids = torch.tensor([int(u.split("-")[1]) for u in data.non_tensor_batch["uid"]])
    want = compute_advantages(scores, index=ids, estimator=name)
    mask = data.batch["response_mask"]
    torch.testing.assert_close(out.batch["advantages"], want[:, None] * mask)
    torch.testing.assert_close(out.batch["returns"], want[:, None] * mask)


def test_hyper_parameters_come_from_the_algorithm_config() -> None:
    data, scores = batch(seed=1)
    algorithm = OmegaConf.create({"adv_estimator": "agpo", "agpo": {"lambda_pos": 0.3, "lambda_neg": 0.5}})
    out = compute_advantage(data, adv_estimator="agpo", config=algorithm)
    ids = torch.tensor([int(u.split("-")[1]) for u in data.non_tensor_batch["uid"]])
    want = compute_advantages(scores, index=ids, lambda_pos=0.3, lambda_neg=0.5)
    torch.testing.assert_close(out.batch["advantages"], want[:, None] * data.batch["response_mask"])
    assert float(out.batch["advantages"].min()) == -0.5


def test_unknown_setting_in_the_algorithm_config_is_an_error() -> None:
    data, _ = batch()
    algorithm = OmegaConf.create({"adv_estimator": "agpo", "agpo": {"lambda_plus": 0.3}})
    with pytest.raises(ValueError, match="unknown advantage setting"):
        compute_advantage(data, adv_estimator="agpo", config=algorithm)


def test_verl_keeps_its_own_grpo() -> None:
    assert core_algos.ADV_ESTIMATOR_REGISTRY["grpo"].__module__.startswith("verl.")
