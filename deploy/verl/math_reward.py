"""verl custom reward for MATH-style data: points verl's custom_reward_function at agpo's math-verify reward."""

from rlvr.tasks.math import verl_compute_score as compute_score

__all__ = ["compute_score"]
