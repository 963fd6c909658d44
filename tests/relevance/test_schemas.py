"""Label schemas: names, codes, gains, guidelines, the registry and projections."""

from __future__ import annotations

import pytest

from relevance.schemas import (
    DEFAULT_SCHEMA,
    Label,
    LabelSchema,
    get_schema,
    project_label,
    register_schema,
    schema_names,
)


def test_esci_is_the_default_with_paper_gains() -> None:
    esci = get_schema()
    assert DEFAULT_SCHEMA == "esci" and esci.name == "esci"
    assert esci.names == ["Exact", "Substitute", "Complement", "Irrelevant"]
    assert esci.codes == ["E", "S", "C", "I"]
    assert esci.gains == {"Exact": 1.0, "Substitute": 0.1, "Complement": 0.01, "Irrelevant": 0.0}
    assert [esci.grade(n) for n in esci.names] == [3, 2, 1, 0]


def test_other_schemas() -> None:
    graded, binary, wands = get_schema("graded"), get_schema("binary"), get_schema("wands")
    assert graded.codes == ["3", "2", "1", "0"]
    assert graded.gains == {"Perfect": 3.0, "Good": 2.0, "Fair": 1.0, "Bad": 0.0}
    assert binary.names == ["Relevant", "Irrelevant"]
    assert wands.gains == {"Exact": 2.0, "Partial": 1.0, "Irrelevant": 0.0}
    assert set(schema_names()) >= {"esci", "graded", "binary", "wands"}


@pytest.mark.parametrize("name", ["esci", "graded", "binary", "wands"])
def test_every_label_has_a_short_written_guideline(name: str) -> None:
    for label in get_schema(name).labels:
        sentences = [s for s in label.guideline.replace(";", ".").split(". ") if s.strip()]
        assert label.guideline.endswith(".") and 1 <= len(sentences) <= 3, label.guideline
        assert 1 <= len(label.hint.split()) <= 10


def test_lookup_by_name_code_alias_any_case() -> None:
    esci = get_schema("ESCI")
    assert esci.normalize("exact") == esci.normalize("E") == esci.normalize(" e ") == "Exact"
    assert esci.normalize("complementary") == "Complement"
    assert esci.normalize("Partial") is None
    assert esci.label("s").name == "Substitute"
    with pytest.raises(KeyError, match="Partial"):
        esci.label("Partial")


def test_unknown_schema_names_the_choices() -> None:
    with pytest.raises(KeyError, match="esci"):
        get_schema("nope")


def test_schema_rejects_a_key_naming_two_labels() -> None:
    with pytest.raises(ValueError, match="names both"):
        LabelSchema("bad", (Label("Yes", "Y", 1, 1.0, "g.", "h"), Label("Yummy", "y", 0, 0.0, "g.", "h")), "x")


def test_register_refuses_to_replace_silently() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_schema(get_schema("esci"))


def test_version_changes_with_the_guidelines() -> None:
    esci = get_schema("esci")
    changed = LabelSchema(
        "esci", (Label("Exact", "E", 3, 1.0, "Another guideline.", "h"), *esci.labels[1:]), esci.description
    )
    assert changed.version() != esci.version()
    assert esci.version() == get_schema("esci").version()


def test_projections() -> None:
    assert project_label("S", "esci", "graded") == "Good"
    assert project_label("Substitute", "esci", "binary") == "Relevant"
    assert project_label("C", "esci", "binary") == "Irrelevant"
    assert project_label("Fair", "graded", "binary") == "Irrelevant"
    assert project_label("e", "esci", "esci") == "Exact"
    with pytest.raises(KeyError, match="no projection"):
        project_label("Exact", "wands", "esci")
