"""The pass@k study: does AGPO raise pass@1 without shrinking pass@k at large k, where GRPO does?

From one base model, every method trains with the same rollouts per step and the same number of steps, its
learning rate tuned on the dev split, for several seeds; each final policy is evaluated with n samples per
test problem. Every run and evaluation is cached under ``out_dir``, so an interrupted study resumes where it
stopped and a finished one re-renders its report without recomputing anything. The small files (each run's
settings and every evaluation) are also kept in ``record_dir``: committed, they let a study of many CPU-hours
advance in slices (``--hours``) from fresh checkouts.

Two arms can name the same training: NSR is AGPO with lambda_pos 0, W-REINFORCE is AGPO with a constant
positive term. A run is known by what it trains (the advantage rule the estimator's name resolves to, the rate,
the seed, every other setting), not by its arm's name, so such arms share one run and its evaluations.

- :mod:`.config`: ``StudyConfig``, its loading and checks;
- :mod:`.runs`: run identity, the run cache and record, what a run's training log says;
- :mod:`.runner`: ``Study``, which does the work;
- :mod:`.report`: statistics, plots and the Markdown report.
"""

from experiments.countdown.study.config import StudyConfig
from experiments.countdown.study.report import render_report
from experiments.countdown.study.runner import Study

__all__ = ["Study", "StudyConfig", "render_report"]
