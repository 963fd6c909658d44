"""Seeded generator of the synthetic query-ad relevance benchmark.

How a benchmark is made:

1. Queries. Each query picks a category, a difficulty tier and an intent (category; brand + category;
   attribute(s) + category; brand + attribute(s) + category; model number; model number + attribute), which
   fix its structured constraints. Its text then gets surface noise by tier: synonyms, word order, filler
   words (``cheap``, ``best``), a misspelling, unit variants (``1tb`` / ``1 tb`` / ``1000gb``). Query texts are
   unique, and each query belongs to exactly one split, so the splits share no query.
2. Ads. Each query gets 4-8 ads. For each ad a target label is drawn and facts are built to reach it: an
   Exact ad meets every constraint; a Substitute violates one (hard tier: a near miss such as a neighbouring
   capacity, a model number with two digits swapped) or several (easy tier); a Complement comes from a
   complementary category; an Irrelevant ad from an unrelated one. The label stored is then computed from the
   facts by :func:`relevance.synthetic.rules.esci_label`, never taken from the target.
3. Rendering. The facts become a title, brand, category path, attributes and description. Easy ads state
   every queried detail in the title; medium ones move some to the attributes; hard ones put the deciding detail
   only in the attributes or the description, in another unit than the query, and give hard Complements a
   title that names the queried brand and model (``Case for Novia NX-450``). Getting a hard pair right needs
   reading several fields.
4. Reasoning. Each labelled pair gets a short templated trace that restates the constraints, checks each one,
   and ends with ``Label: <label>`` exactly as :func:`relevance.parsing.parse_label` reads it.

Output layout, one JSON object per line, in the Pair contract shape::

    {"custom_id": "q000012-3", "query": "...", "ad": {"title", "description", "brand", "category",
     "attributes"}, "meta": {"query_id", "split", "label", "grade", "difficulty", "intent", "reasoning",
     "constraints": {...}, "ad_facts": {...}}}

The unlabelled pool keeps only ``query_id`` and ``split`` in ``meta``. ``manifest.json`` records the seed, the
generator version, the sizes and the counts per split, label, difficulty and intent, and a sha256 per file.
Everything is a function of (generator version, seed, config): the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from relevance.parsing import format_label_line
from relevance.schemas import ESCI
from relevance.synthetic import placement, zh
from relevance.synthetic.attributes import KINDS
from relevance.synthetic.catalogue import ACCESSORY_OF, CATEGORIES, COMPLEMENTS, Category
from relevance.synthetic.rules import esci_label, violations

GENERATOR_VERSION = "1.0"
SPLITS = ("teacher_train", "dev", "gold_test", "pool")
LANGUAGES = ("en", "zh")
TIERS = ("easy", "medium", "hard")
LABELS = tuple(ESCI.names)
DEFAULT_SIZES: dict[str, int] = {"teacher_train": 20_000, "dev": 2_000, "gold_test": 2_000, "pool": 20_000}

# Intent weights per tier; model intents fall back to brand + attribute for categories without model numbers.
_INTENTS: dict[str, tuple[tuple[str, float], ...]] = {
    "easy": (
        ("category", 0.08),
        ("brand_category", 0.27),
        ("attribute_category", 0.3),
        ("brand_attribute", 0.25),
        ("model", 0.1),
    ),
    "medium": (
        ("category", 0.08),
        ("brand_category", 0.22),
        ("attribute_category", 0.3),
        ("brand_attribute", 0.25),
        ("model", 0.15),
    ),
    "hard": (("attribute_category", 0.3), ("brand_attribute", 0.4), ("model", 0.15), ("model_attribute", 0.15)),
}
# How many attribute constraints an attribute intent asks for, per tier (inclusive range).
_N_ATTRS = {"easy": (1, 1), "medium": (1, 2), "hard": (2, 3)}
_FILLER_BEFORE = ("cheap", "best", "buy", "new", "top rated", "affordable", "quality")
_FILLER_AFTER = ("on sale", "deal", "online", "sale", "free shipping", "discount", "for gift")
_BLURBS = (
    "Ideal for everyday use.",
    "Backed by a one-year warranty.",
    "Ships in recyclable packaging.",
    "A customer favourite.",
    "Designed for durability.",
    "Easy to set up.",
    "Great value for money.",
)
_CATS: tuple[Category, ...] = tuple(CATEGORIES.values())


@dataclass(frozen=True)
class BenchmarkConfig:
    """What to generate. ``sizes`` are pairs per split; the mixes are relative weights."""

    seed: int = 0
    sizes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_SIZES))
    difficulty_mix: Mapping[str, float] = field(default_factory=lambda: {"easy": 0.3, "medium": 0.4, "hard": 0.3})
    label_mix: Mapping[str, float] = field(
        default_factory=lambda: {"Exact": 0.3, "Substitute": 0.32, "Complement": 0.18, "Irrelevant": 0.2}
    )
    ads_per_query: tuple[int, int] = (4, 8)
    lang: str = "en"  # zh: the same world in Chinese, JD-style (relevance.synthetic.zh)

    def __post_init__(self) -> None:
        if self.lang not in LANGUAGES:
            raise ValueError(f"lang {self.lang!r}: choose one of {', '.join(LANGUAGES)}")
        unknown = set(self.sizes) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown splits {sorted(unknown)}; splits are {', '.join(SPLITS)}")
        if any(n < 0 for n in self.sizes.values()):
            raise ValueError("split sizes must be non-negative")
        if set(self.difficulty_mix) - set(TIERS) or set(self.label_mix) - set(LABELS):
            raise ValueError(f"difficulty_mix keys must be among {TIERS}, label_mix keys among {LABELS}")
        lo, hi = self.ads_per_query
        if not 1 <= lo <= hi:
            raise ValueError("ads_per_query must be (lo, hi) with 1 <= lo <= hi")


# ---------------------------------------------------------------------------------------------- text helpers


def _article(noun: str) -> str:
    return f"an {noun}" if noun[0].lower() in "aeiou" else f"a {noun}"


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9.]", "", text.lower())


def _misspell(rng: random.Random, word: str) -> str:
    """One typo in a word of five or more letters (swap, drop, double, or a wrong vowel); else unchanged."""
    if len(word) < 5 or not word.isalpha():
        return word
    for _ in range(4):
        i = rng.randrange(1, len(word) - 1)
        op = rng.randrange(4)
        if op == 0:
            out = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        elif op == 1:
            out = word[:i] + word[i + 1 :]
        elif op == 2:
            out = word[:i] + word[i] + word[i:]
        else:
            vowels = [j for j, ch in enumerate(word) if ch in "aeiou" and j > 0]
            if not vowels:
                continue
            j = rng.choice(vowels)
            out = word[:j] + rng.choice([v for v in "aeiou" if v != word[j]]) + word[j + 1 :]
        if out != word:
            return out
    return word


def _model_forms(model: str) -> list[str]:
    prefix, digits = model.split("-")
    p = prefix.lower()
    return [f"{p}-{digits}", f"{p}{digits}", f"{p} {digits}"]


def _near_model(rng: random.Random, model: str) -> str:
    """A model number that looks like ``model`` but is a different product (swapped, dropped or added digit)."""
    prefix, digits = model.split("-")
    candidates = []
    for i in range(len(digits) - 1):
        if digits[i] != digits[i + 1]:
            candidates.append(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2 :])
    if len(digits) > 2:
        candidates.append(digits[:-1])
    candidates.append(digits + str(rng.randrange(10)))
    last = int(digits[-1])
    candidates.append(digits[:-1] + str((last + 1) % 10))
    candidates = [c for c in candidates if c != digits and not c.startswith("0")]
    return f"{prefix}-{rng.choice(candidates)}"


# -------------------------------------------------------------------------------------------------- queries


@dataclass
class _Query:
    qid: str
    text: str
    tier: str
    intent: str
    category: Category
    brand: str | None
    model: str | None
    attributes: dict[str, str]
    forms: dict[str, str]  # kind -> surface form used in the query text

    def constraints(self) -> dict[str, Any]:
        return {
            "category": self.category.key,
            "brand": self.brand,
            "model": self.model,
            "attributes": dict(self.attributes),
        }


def _weighted(rng: random.Random, items: Sequence[tuple[str, float]]) -> str:
    names, weights = zip(*items, strict=True)
    return rng.choices(names, weights=weights)[0]


def _make_query(rng: random.Random, qid: str, tier: str, lang: str = "en") -> _Query:
    cat = rng.choice(_CATS)
    intent = _weighted(rng, _INTENTS[tier])
    if intent.startswith("model") and not cat.models:
        intent = "brand_attribute" if tier != "easy" else "brand_category"
    kinds = list(cat.attributes)
    brand = model = None
    attrs: dict[str, str] = {}
    if intent in ("brand_category", "brand_attribute", "model", "model_attribute"):
        brand = rng.choice(cat.brands)
    if intent.startswith("model"):
        model = rng.choice(cat.model_numbers[brand])  # type: ignore[index]
    if intent in ("attribute_category", "brand_attribute", "model_attribute"):
        lo, hi = _N_ATTRS[tier]
        if intent != "attribute_category":
            lo, hi = max(1, lo - 1), max(1, hi - 1)
        n = min(len(kinds), rng.randint(lo, hi))
        for kind in rng.sample(kinds, n):
            attrs[kind] = rng.choice(cat.attributes[kind])
    if tier == "hard" and brand is None and len(attrs) < 2:
        # A category with one attribute kind: the brand makes the second constraint of a hard query.
        brand, intent = rng.choice(cat.brands), "brand_attribute"
    if lang == "zh":
        text, zh_forms = zh.query_text(rng, tier, cat.key, brand, model, attrs)
        return _Query(qid, text, tier, intent, cat, brand, model, attrs, zh_forms)

    # Surface text: chunks in a natural order, then tier noise.
    forms: dict[str, str] = {}
    for kind, value in attrs.items():
        options = KINDS[kind].query_forms(value)
        forms[kind] = options[0] if tier == "easy" else rng.choice(options[:2] if tier == "medium" else options)
    noun = rng.choice(cat.query_nouns)
    brand_text = brand.lower() if brand else None
    model_text = None
    if model:
        mf = _model_forms(model)
        model_text = mf[0] if tier == "easy" else rng.choice(mf)
    if tier == "hard" and rng.random() < 0.6:
        # One misspelling, in the brand or in the longest word of the product noun.
        if brand_text and rng.random() < 0.5:
            brand_text = _misspell(rng, brand_text)
        else:
            words = noun.split()
            k = max(range(len(words)), key=lambda j: len(words[j]))
            words[k] = _misspell(rng, words[k])
            noun = " ".join(words)
    chunks: list[str] = []
    if brand_text:
        chunks.append(brand_text)
    chunks.extend(forms[k] for k in attrs if not KINDS[k].suffix)
    if model_text:
        chunks.append(model_text)
        if tier == "easy" or rng.random() < 0.5:
            chunks.append(noun)
    else:
        chunks.append(noun)
    chunks.extend(forms[k] for k in attrs if KINDS[k].suffix)
    if tier == "medium":
        noise = rng.randrange(3)
        if noise == 0:
            chunks.insert(0, rng.choice(_FILLER_BEFORE))
        elif noise == 1:
            chunks.append(rng.choice(_FILLER_AFTER))
        elif len(chunks) > 1:
            i = rng.randrange(len(chunks) - 1)
            chunks[i], chunks[i + 1] = chunks[i + 1], chunks[i]
    elif tier == "hard":
        if rng.random() < 0.4:
            chunks.insert(0, rng.choice(_FILLER_BEFORE))
        if rng.random() < 0.3:
            chunks.append(rng.choice(_FILLER_AFTER))
        if rng.random() < 0.35 and len(chunks) > 1:
            rng.shuffle(chunks)
    text = " ".join(chunks).lower()
    return _Query(qid, text, tier, intent, cat, brand, model, attrs, forms)


# ------------------------------------------------------------------------------------------------------ ads


def _random_facts(rng: random.Random, cat: Category) -> dict[str, Any]:
    brand = rng.choice(cat.brands)
    return {
        "category": cat.key,
        "brand": brand,
        "model": rng.choice(cat.model_numbers[brand]) if cat.models else None,
        "attributes": {kind: rng.choice(values) for kind, values in cat.attributes.items()},
    }


def _exact_facts(rng: random.Random, q: _Query) -> dict[str, Any]:
    facts = _random_facts(rng, q.category)
    if q.brand:
        facts["brand"] = q.brand
        if q.category.models:
            facts["model"] = rng.choice(q.category.model_numbers[q.brand])
    if q.model:
        facts["model"] = q.model
    facts["attributes"].update(q.attributes)
    return facts


def _violate(rng: random.Random, q: _Query, facts: dict[str, Any], what: str, near: bool) -> None:
    cat = q.category
    if what == "brand":
        facts["brand"] = rng.choice([b for b in cat.brands if b != q.brand])
        if cat.models:
            facts["model"] = rng.choice(cat.model_numbers[facts["brand"]])
    elif what == "model":
        if near:
            facts["model"] = _near_model(rng, q.model)  # type: ignore[arg-type]
        else:
            others = [m for m in cat.model_numbers[q.brand] if m != q.model]  # type: ignore[index]
            facts["model"] = rng.choice(others)
    else:
        value = q.attributes[what]
        allowed = cat.attributes[what]
        pool = KINDS[what].near(value, allowed) if near else [v for v in allowed if v != value]
        facts["attributes"][what] = rng.choice(pool)


def _ad_facts(rng: random.Random, q: _Query, target: str) -> tuple[dict[str, Any], list[str]]:
    """Facts aimed at ``target``, and the constraints violated on purpose (for hard rendering)."""
    options = (["brand"] if q.brand else []) + (["model"] if q.model else []) + list(q.attributes)
    comps = COMPLEMENTS[q.category.key]
    if target == "Substitute" and not options:
        target = "Exact"
    if target == "Complement" and not comps:
        target = "Irrelevant"
    if target == "Exact":
        return _exact_facts(rng, q), []
    if target == "Substitute":
        facts = _exact_facts(rng, q)
        if q.tier == "easy":
            chosen = options if "brand" not in options else ["brand", *[o for o in options if o != "brand"]]
            chosen = chosen[: rng.randint(1, len(chosen))]
        else:
            # Medium and hard violate one constraint; hard prefers attributes and models over the brand.
            pool = [o for o in options if o != "brand"] if q.tier == "hard" and len(options) > 1 else options
            chosen = [rng.choice(pool)]
        for what in chosen:
            _violate(rng, q, facts, what, near=q.tier == "hard")
        return facts, chosen
    if target == "Complement":
        facts = _random_facts(rng, CATEGORIES[rng.choice(comps)])
    else:
        same_family = q.tier == "hard"
        pool = [
            c
            for c in _CATS
            if c.key != q.category.key
            and c.key not in comps
            and (same_family or c.family != q.category.family)
            and not set(COMPLEMENTS[c.key]) & set(comps)
        ]
        near = [c for c in pool if c.family == q.category.family]
        if same_family and near and rng.random() < 0.7:
            pool = near  # a hard negative from the same department
        facts = _random_facts(rng, rng.choice(pool))
    if q.tier != "easy":
        # Distractors share the queried values they can carry (a red case for a red phone query).
        for kind, value in q.attributes.items():
            values = CATEGORIES[facts["category"]].attributes.get(kind, ())
            if value in values:
                facts["attributes"][kind] = value
    return facts, []


@dataclass
class _Rendered:
    ad: dict[str, Any]
    shown: dict[str, str]  # kind -> surface form shown in the ad


def _render_ad(rng: random.Random, q: _Query, facts: dict[str, Any], decisive: list[str]) -> _Rendered:
    cat = CATEGORIES[facts["category"]]
    tier = q.tier
    same = cat.key == q.category.key
    noun = cat.ad_nouns[0] if tier == "easy" else rng.choice(cat.ad_nouns)
    title_attrs: list[str] = []
    attributes: dict[str, str] = {}
    desc: list[str] = []
    shown: dict[str, str] = {}
    gender_prefix = ""
    if facts["model"] and tier != "easy" and rng.random() < 0.3:
        attributes["Model Number"] = facts["model"]
    for kind, value in facts["attributes"].items():
        spec = KINDS[kind]
        options = spec.ad_forms(value)
        constrained = same and kind in q.attributes
        if tier == "easy":
            form = options[0]
        elif tier == "medium":
            form = rng.choice(options[:2])
        else:
            form = rng.choice(options)
            if constrained:
                # Prefer a different spelling or unit from the query's (1 TB in the query, 1000 GB in the ad).
                other = [o for o in options if _norm(o) != _norm(q.forms[kind])]
                if other and _norm(form) == _norm(q.forms[kind]):
                    form = rng.choice(other)
        place = placement.place(rng, tier, constrained, decisive, kind)
        if place == "none":
            continue
        shown[kind] = form
        if place == "title":
            if kind == "gender":
                gender_prefix = form + " "
            else:
                title_attrs.append(form)
            if tier == "easy":
                attributes[rng.choice(spec.ad_keys)] = form
        elif place == "attrs":
            attributes[rng.choice(spec.ad_keys)] = form
        else:
            desc.append(f"{spec.key.capitalize()}: {form}.")
    head = [facts["brand"]]
    if facts["model"]:
        head.append(facts["model"])
    title = " ".join(head) + " " + gender_prefix + noun
    if q.category.key in ACCESSORY_OF[cat.key] and (tier == "hard" or (tier == "medium" and rng.random() < 0.5)):
        # An accessory whose title names the queried product: only the category tells it apart.
        target = " ".join(x for x in (q.brand, q.model) if x) or q.category.query_nouns[0].title()
        title += f" for {target}"
    if title_attrs:
        title += ", " + ", ".join(title_attrs)
    description = " ".join([f"{noun} by {facts['brand']}.", *desc, rng.choice(_BLURBS)])
    ad: dict[str, Any] = {"title": title, "description": description}
    if tier != "hard" or rng.random() < 0.7:
        ad["brand"] = facts["brand"]
    ad["category"] = cat.path
    if attributes:
        ad["attributes"] = attributes
    return _Rendered(ad, shown)


def _reasoning(q: _Query, facts: dict[str, Any], label: str, shown: Mapping[str, str]) -> str:
    qcat, acat = q.category, CATEGORIES[facts["category"]]
    wants = [qcat.noun]
    if q.brand:
        wants.append(f"brand {q.brand}")
    if q.model:
        wants.append(f"model {q.model}")
    wants.extend(f"{kind} {value}" for kind, value in q.attributes.items())
    lines = [f"Query wants: {', '.join(wants)}."]
    if acat.key == qcat.key:
        lines.append(f"Ad: {acat.noun} by {facts['brand']}, same product type.")
        checks = []
        for key in ("brand", "model"):
            want = getattr(q, key)
            if want is None:
                continue
            have = facts[key]
            checks.append(
                f"{key.capitalize()} {want}: match."
                if have == want
                else f"{key.capitalize()}: ad has {have}, query wants {want}: mismatch."
            )
        for kind, want in q.attributes.items():
            have = facts["attributes"][kind]
            surface = shown.get(kind, have)
            if have == want:
                if _norm(surface) != _norm(want):
                    checks.append(f"{kind.capitalize()}: ad says {surface} = {want}: match.")
                else:
                    checks.append(f"{kind.capitalize()} {want}: match.")
            else:
                checks.append(f"{kind.capitalize()}: ad has {have}, query wants {want}: mismatch.")
        lines.append(" ".join(checks) if checks else "No other constraint.")
        failed = violations(q.constraints(), facts)
        if not failed:
            lines.append("All constraints met.")
        else:
            details = "1 detail differs" if len(failed) == 1 else f"{len(failed)} details differ"
            lines.append(f"Same product type, but {details}.")
    else:
        lines.append(f"Ad: {acat.noun} by {facts['brand']}, a different product type.")
        verb = "is used together with" if label == "Complement" else "is not used with"
        lines.append(f"{_article(acat.noun).capitalize()} {verb} {_article(qcat.noun)}.")
    lines.append(format_label_line(label))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- driver


@dataclass
class Benchmark:
    """Generated records per split and the config that made them.

    ``splits`` holds the records as written (Pair-shaped dicts; the pool's without gold fields); ``gold`` holds,
    index-aligned, every record's gold ``meta`` including the pool's, for counts and answer keys.
    """

    config: BenchmarkConfig
    splits: dict[str, list[dict[str, Any]]]
    gold: dict[str, list[dict[str, Any]]]

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for split, metas in self.gold.items():
            out[split] = {
                "pairs": len(metas),
                "queries": len({m["query_id"] for m in metas}),
                "labels": {lab: sum(1 for m in metas if m["label"] == lab) for lab in LABELS},
                "difficulty": {t: sum(1 for m in metas if m["difficulty"] == t) for t in TIERS},
                "intents": dict(sorted(Counter(m["intent"] for m in metas).items())),
            }
        return out


def generate(config: BenchmarkConfig | None = None) -> Benchmark:
    """Generate every split in memory (see :class:`Benchmark`)."""
    config = config or BenchmarkConfig()
    # English keeps the seed string it always had; another language draws its own stream.
    suffix = "" if config.lang == "en" else f":{config.lang}"
    rng = random.Random(f"relevance-synthetic:{GENERATOR_VERSION}:{config.seed}{suffix}")
    remaining = {s: int(config.sizes.get(s, 0)) for s in SPLITS}
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    gold: dict[str, list[dict[str, Any]]] = {s: [] for s in SPLITS}
    tiers = [(t, float(config.difficulty_mix.get(t, 0.0))) for t in TIERS]
    label_items = [(lab, float(config.label_mix.get(lab, 0.0))) for lab in LABELS]
    lo, hi = config.ads_per_query
    used_texts: set[str] = set()
    n_query = 0
    while any(remaining.values()):
        names = [s for s in SPLITS if remaining[s] > 0]
        split = rng.choices(names, weights=[remaining[s] for s in names])[0]
        tier = _weighted(rng, tiers)
        n_query += 1
        qid = f"q{n_query:06d}"
        for attempt in range(100):
            q = _make_query(rng, qid, tier, config.lang)
            if q.text in used_texts and attempt >= 30:
                # The tier's clean query space is used up: a filler word makes a new, equally hard text.
                if config.lang == "zh":
                    q.text = zh.filler(rng, q.text)
                else:
                    q.text = f"{rng.choice(_FILLER_BEFORE)} {q.text} {rng.choice(_FILLER_AFTER)}"
            if q.text not in used_texts:
                break
        else:
            raise RuntimeError("could not make a new unique query; the catalogue is too small for this size")
        used_texts.add(q.text)
        n_ads = min(rng.randint(lo, hi), remaining[split])
        remaining[split] -= n_ads
        for j in range(n_ads):
            facts, decisive = _ad_facts(rng, q, _weighted(rng, label_items))
            label = esci_label(q.constraints(), facts)
            if config.lang == "zh":
                ad, shown = zh.render_ad(rng, q, facts, decisive)
                rendered, trace = _Rendered(ad, shown), zh.reasoning(q, facts, label)
            else:
                rendered = _render_ad(rng, q, facts, decisive)
                trace = _reasoning(q, facts, label, rendered.shown)
            hidden = {
                "query_id": qid,
                "split": split,
                "label": label,
                "grade": ESCI.grade(label),
                "difficulty": tier,
                "intent": q.intent,
                "reasoning": trace,
                "constraints": q.constraints(),
                "ad_facts": facts,
            }
            meta = hidden if split != "pool" else {"query_id": qid, "split": split}
            splits[split].append({"custom_id": f"{qid}-{j}", "query": q.text, "ad": rendered.ad, "meta": meta})
            gold[split].append(hidden)
    return Benchmark(config, splits, gold)


def _line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def generate_benchmark(
    out_dir: str | Path,
    seed: int = 0,
    *,
    teacher_train: int = DEFAULT_SIZES["teacher_train"],
    dev: int = DEFAULT_SIZES["dev"],
    gold_test: int = DEFAULT_SIZES["gold_test"],
    pool: int = DEFAULT_SIZES["pool"],
    difficulty_mix: Mapping[str, float] | None = None,
    label_mix: Mapping[str, float] | None = None,
    pool_answers: bool = False,
    lang: str = "en",
) -> dict[str, Any]:
    """Write ``<split>.jsonl`` for each split and ``manifest.json`` into ``out_dir``; return the manifest.

    Sizes are numbers of pairs. With ``pool_answers`` the pool's gold fields also go to ``pool_answers.jsonl``
    (``{custom_id, label, difficulty, query_id}`` per line), for measuring annotation quality on the pool.
    """
    kwargs: dict[str, Any] = {
        "seed": seed,
        "sizes": {"teacher_train": teacher_train, "dev": dev, "gold_test": gold_test, "pool": pool},
        "lang": lang,
    }
    if difficulty_mix is not None:
        kwargs["difficulty_mix"] = dict(difficulty_mix)
    if label_mix is not None:
        kwargs["label_mix"] = dict(label_mix)
    config = BenchmarkConfig(**kwargs)
    bench = generate(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    digests: dict[str, str] = {}

    def write(name: str, lines: list[str]) -> None:
        data = ("\n".join(lines) + "\n" if lines else "").encode("utf-8")
        (out / name).write_bytes(data)
        digests[name] = hashlib.sha256(data).hexdigest()

    for split in SPLITS:
        name = f"{split}.jsonl"
        files[split] = name
        write(name, [_line(r) for r in bench.splits[split]])
    if pool_answers:
        keys = ("label", "difficulty", "query_id")
        write(
            "pool_answers.jsonl",
            [
                json.dumps({"custom_id": r["custom_id"], **{k: g[k] for k in keys}}, separators=(",", ":"))
                for r, g in zip(bench.splits["pool"], bench.gold["pool"], strict=True)
            ],
        )
        files["pool_answers"] = "pool_answers.jsonl"
    manifest = {
        "generator": "relevance.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "label_schema": ESCI.name,
        "lang": config.lang,
        "config": {
            "sizes": dict(config.sizes),
            "difficulty_mix": dict(config.difficulty_mix),
            "label_mix": dict(config.label_mix),
            "ads_per_query": list(config.ads_per_query),
        },
        "files": files,
        "sha256": digests,
        "counts": bench.counts(),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest
