"""Answer targets for pairs that carry a human label but no written reasoning (real search logs).

The teacher answers with brief reasoning and then ``Label: <label>``. Real labelled rows have only the label,
so their target reasoning is built from the pair itself: which of the query's words the ad's title contains
and which it lacks. That is the first thing a human rater checks, it can be verified against the pair, and it
keeps answers short (a generated token costs more than anything else on a CPU).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from relevance.parsing import format_label_line

_WORD = re.compile(r"[a-z0-9]+(?:[.'][a-z0-9]+)*")
# Words that carry no product detail; a query made only of them still lists them.
_STOP = frozenset(["a", "an", "and", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with", "x"])
MAX_LISTED = 6


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _forms(word: str) -> set[str]:
    """The word and its plausible singulars: enough that "stakes", "boxes" and "batteries" find their singular."""
    forms = {word}
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
        if word.endswith("ies"):
            forms.add(word[:-3] + "y")
    return forms


def query_terms(query: str) -> list[str]:
    """The query's distinct content words in order (all its words when every one is a stop word)."""
    words = list(dict.fromkeys(_words(query)))
    content = [w for w in words if w not in _STOP]
    return content or words


def term_overlap(query: str, title: str) -> tuple[list[str], list[str]]:
    """(query terms the title contains, query terms it lacks), comparing words with their singulars."""
    title_forms = set().union(*(_forms(w) for w in _words(title)))
    title_text = " ".join(_words(title))
    found, missing = [], []
    for term in query_terms(query):
        # Words match by a shared form; "4x4"-style terms also as text inside the title.
        hit = bool(_forms(term) & title_forms) or (not term.isalpha() and term in title_text)
        (found if hit else missing).append(term)
    return found, missing


def _listing(terms: list[str]) -> str:
    if not terms:
        return "none"
    shown = ", ".join(terms[:MAX_LISTED])
    return shown + (f" (+{len(terms) - MAX_LISTED} more)" if len(terms) > MAX_LISTED else "")


def overlap_reasoning(query: str, title: str) -> str:
    """Two short lines: the query terms the ad's title has, and those it lacks."""
    found, missing = term_overlap(query, title)
    return f"In the ad: {_listing(found)}.\nMissing: {_listing(missing)}."


def answer_target(record: Mapping[str, Any]) -> str:
    """The answer a teacher is trained to give for ``record``: its gold reasoning, or overlap reasoning."""
    meta = record["meta"]
    reasoning = meta.get("reasoning")
    if reasoning:
        return reasoning  # the synthetic generator's traces already end with the label line
    return overlap_reasoning(record["query"], record["ad"]["title"]) + "\n" + format_label_line(meta["label"])
