"""Where an ad states each of its attributes, by difficulty: the one rule both languages' ads follow.

Easy ads put every queried detail in the title; medium ones move some to the attributes; hard ones put the deciding
detail only in the attributes or the description, so getting a hard pair right needs reading several fields.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def place(rng: random.Random, tier: str, constrained: bool, decisive: Sequence[str], kind: str) -> str:
    """``title``, ``attrs``, ``desc`` or ``none`` for attribute ``kind``; ``constrained``: the query asks for it,
    ``decisive``: the constraints the ad violates on purpose."""
    r = rng.random()
    if tier == "easy":
        return "title" if constrained else ("attrs" if r < 0.7 else "none")
    if tier == "medium":
        if constrained:
            return "title" if r < 0.5 else "attrs"
        return "attrs" if r < 0.6 else ("desc" if r < 0.8 else "none")
    if (constrained and kind in decisive) or (constrained and not decisive and r < 0.5):
        return "attrs" if rng.random() < 0.5 else "desc"
    if constrained:
        return "title" if r < 0.5 else "attrs"
    return "title" if r < 0.3 else ("attrs" if r < 0.7 else ("desc" if r < 0.85 else "none"))
