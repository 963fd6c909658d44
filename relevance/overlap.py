"""Overlap reasoning: which of the query's words an ad's title has and which it lacks, in two short lines.

That is the first thing a human rater checks, it can be verified against the pair, and it is short (a
generated token costs more than anything else on a CPU). The SmolLM2 teacher learnt it as its reasoning on real
labelled rows (:mod:`teacher.targets`), so the annotation engine can also write it by rule and let the model
score only the label (``label_method="overlap"``, :mod:`relevance.label_scores`).
"""

from __future__ import annotations

import re

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
