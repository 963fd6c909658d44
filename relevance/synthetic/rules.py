"""The labelling rule of the synthetic benchmark, on structured facts rather than text.

A query's constraints are ``{category, brand?, model?, attributes: {kind: canonical value}}``; an ad's facts have
the same shape with every attribute of its category filled in. The ESCI label is then:

- Exact: same category and every constraint met;
- Substitute: same category, at least one constraint violated;
- Complement: the ad's category is a complement of the query's;
- Irrelevant: anything else.

Both dictionaries are stored in each labelled line's ``meta`` so anyone can re-derive the label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relevance.synthetic.catalogue import COMPLEMENTS


def violations(constraints: Mapping[str, Any], facts: Mapping[str, Any]) -> list[str]:
    """The constraint names (``brand``, ``model``, attribute kinds) the ad fails; assumes the same category."""
    failed = []
    for key in ("brand", "model"):
        want = constraints.get(key)
        if want is not None and facts.get(key) != want:
            failed.append(key)
    have = facts.get("attributes") or {}
    for kind, want in (constraints.get("attributes") or {}).items():
        if have.get(kind) != want:
            failed.append(kind)
    return failed


def esci_label(constraints: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    """Exact / Substitute / Complement / Irrelevant by the rules in the module docstring."""
    if facts["category"] == constraints["category"]:
        return "Substitute" if violations(constraints, facts) else "Exact"
    if facts["category"] in COMPLEMENTS[constraints["category"]]:
        return "Complement"
    return "Irrelevant"
