"""Reading the label out of a teacher's answer.

The answer format is free reasoning and then a final line ``Label: <label>``. Models decorate that line
(``**Label:** Exact``, ``Label: **E**``, ``Label: Exact.``, ``Label: Substitute (the size differs)``), so the
parser is tolerant of case, markdown, codes and trailing text. It is strict about meaning: it reads only the
LAST ``Label:`` line, and returns None rather than guessing when there is no such line, the value is not a
label of the schema, or it names two labels (``Exact or Substitute``). An unparseable answer is retried or
recorded as failed by the caller; it is never mapped to a label here.

Chinese answers read the same way: the text is NFKC-folded first (full-width ``：（）Ｅ`` become ``:()E``), a line
may start with 标签 or 最终标签 ("label", "final label"), Chinese brackets, quotes and full stops are decoration,
或 / 还是 / 、 start an alternative, and a schema's aliases name labels in any language (ESCI: 完全相关 ...).
"""

from __future__ import annotations

import re
import unicodedata

from relevance.schemas import DEFAULT_SCHEMA, LabelSchema, get_schema

LABEL_PREFIX = "Label:"

# A line whose first word (after bullets, headings, quotes and emphasis) is "label" or "final label", then ':'.
_LINE = re.compile(
    r"^[\s>#*_`\-]*(?:(?:final\s+)?label|(?:最终)?标签)[\s*_`]*[:=](?P<value>.*)$", re.IGNORECASE | re.MULTILINE
)
_DECOR = re.compile(r"[*_`\"'\[\]<>{}【】「」『』“”‘’《》〈〉]")
# After a label, these start an alternative ("Exact or Substitute", "E/S", "完全相关或可替代") and make the answer
# ambiguous.
_ALTERNATIVE = re.compile(
    r"^\s*(?:/|\||,|;|&|\+|、|或者|或|还是|\bor\b|\band\b|\bvs\.?)\s*(?P<rest>.*)$", re.IGNORECASE
)
_WORD_CHAR = re.compile(r"\w")


def format_label_line(label: str) -> str:
    """The final line exactly as the parser reads it and as gold reasoning traces end."""
    return f"{LABEL_PREFIX} {label}"


def _keys(schema: LabelSchema) -> list[tuple[str, str, bool]]:
    """(lower-case key, canonical name, is_code) for every name, alias and code, longest first."""
    keys = []
    for label in schema.labels:
        for k in (label.name, *label.aliases):
            keys.append((k.lower(), label.name, False))
        keys.append((label.code.lower(), label.name, True))
    return sorted(keys, key=lambda t: -len(t[0]))


def _leading_label(value: str, schema: LabelSchema) -> tuple[str, str] | None:
    """The label a value starts with and the text after it, or None."""
    low = value.lower()
    for key, name, is_code in _keys(schema):
        if not low.startswith(key):
            continue
        rest = value[len(key) :]
        if rest and _WORD_CHAR.match(rest[0]):
            continue  # "Exactly", "Is", "30" are not labels
        if is_code and key.isalpha():
            # A one-letter code must stand alone: "E", "E.", "E (exact)"; not "I think it is Exact".
            stripped = rest.strip()
            if stripped and not re.match(r"^[.!:;)\-(]|^[\u2013\u2014]", stripped):
                continue
        return name, rest
    return None


def _clean(value: str) -> str:
    return _DECOR.sub(" ", value).strip().strip(" .:;-\u2013\u2014。、").strip()


def parse_label(text: str | None, schema: str | LabelSchema = DEFAULT_SCHEMA) -> str | None:
    """The canonical label named on the last ``Label:`` line of ``text``, or None.

    Accepts names, aliases and codes in any case, markdown emphasis, and trailing punctuation or explanation.
    Returns None when there is no ``Label:`` line, when the last one holds no label of the schema, or when it
    names two different labels.
    """
    if not text:
        return None
    text = unicodedata.normalize("NFKC", text)
    sch = get_schema(schema)
    matches = list(_LINE.finditer(text))
    if not matches:
        return None
    value = _clean(matches[-1].group("value"))
    if not value:
        return None
    found = _leading_label(value, sch)
    if found is None:
        return None
    name, rest = found
    alt = _ALTERNATIVE.match(rest)
    if alt:
        other = _leading_label(_clean(alt.group("rest")), sch)
        if other is not None and other[0] != name:
            return None
    # "E (Substitute)" or "Exact Substitute": a second, different label right after the first is ambiguous.
    tail = _clean(rest.strip().lstrip("(").strip())
    other = _leading_label(tail, sch) if tail else None
    if other is not None and other[0] != name:
        return None
    return name
