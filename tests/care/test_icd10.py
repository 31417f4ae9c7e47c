"""ICD-10-CM search: codes, English words, Chinese words; the index agrees
with simple_icd_10_cm's; every Chinese name belongs to a billable code;
searches are fast."""

from __future__ import annotations

import csv
import time

from apps.care.icd10 import ZH_HANS_CSV, icd10_get, icd10_normalise, icd10_search, icd10_warm


def codes(query: str, limit: int = 20) -> list[str]:
    return [c.code for c in icd10_search(query=query, limit=limit)]


def test_it_finds_a_code_by_its_exact_code() -> None:
    assert codes("I10")[0] == "I10"


def test_it_finds_codes_by_prefix_with_or_without_the_dot_and_in_any_case() -> None:
    assert codes("e11.6") == codes("E116")
    assert {"E11.65", "E11.649"} <= set(codes("E11.6"))
    assert all(code.startswith("E11.6") for code in codes("e11.6"))


def test_it_returns_only_billable_codes() -> None:
    assert "E11" not in codes("E11", limit=200)  # a category, not billable
    assert icd10_get("E11") is None
    assert icd10_get("E11.9") is not None


def test_it_finds_codes_by_english_words_and_word_prefixes() -> None:
    assert codes("hypertension")[0] == "I10"
    assert codes("type 2 diab neph") == ["E11.21"]
    assert "J45.909" in codes("asthma uncomplicated")


def test_it_ignores_accents_and_little_words() -> None:
    assert "H81.09" in codes("meniere")
    assert codes("fracture of femur") == codes("fracture femur")


def test_it_finds_codes_by_chinese_words() -> None:
    assert codes("高血压")[0] == "I10"
    assert codes("糖尿病 肾") == ["E11.21", "E11.22"]
    assert "J44.9" in codes("慢阻肺")


def test_it_shows_chinese_names_to_chinese_readers_only() -> None:
    code = icd10_get("I10")
    assert code is not None
    assert code.label("zh-hans") == "原发性高血压"
    assert code.label("en") == "Essential (primary) hypertension"
    rare = icd10_get("S72.001A")
    assert rare is not None
    assert rare.label("zh-hans") == rare.description  # no Chinese name: the English one


def test_it_finds_nothing_for_nonsense_and_empty_queries() -> None:
    assert codes("") == []
    assert codes("   ") == []
    assert codes("zzqxj") == []
    assert codes("x" * 10_000) == []
    assert codes("of") == []  # little words alone: too broad
    assert codes("S") == []  # one letter: a third of the list
    assert codes("肾")  # one Chinese character is a word


def test_it_normalises_codes() -> None:
    assert icd10_normalise(" e119 ") == "E11.9"
    assert icd10_normalise("I10") == "I10"
    assert icd10_get("e119") == icd10_get("E11.9")
    assert icd10_get("E11.9" + "9" * 50) is None


def test_every_chinese_name_belongs_to_a_billable_code() -> None:
    with ZH_HANS_CSV.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 150
    for row in rows:
        code = icd10_get(row["code"])
        assert code is not None, row["code"]
        assert code.code == row["code"], "write codes with their dot"
        assert row["name_zh_hans"].strip()
    assert len({row["code"] for row in rows}) == len(rows)


def test_a_search_takes_a_few_milliseconds() -> None:
    icd10_warm()
    queries = ["I10", "E11.6", "hypertension", "type 2 diabetes", "高血压", "fracture femur", "of", "S7", "pain"]
    slowest = 0.0
    for query in queries:
        started = time.perf_counter()
        for _ in range(5):
            icd10_search(query=query)
        slowest = max(slowest, (time.perf_counter() - started) / 5)
    assert slowest < 0.05, f"slowest search {slowest * 1000:.1f} ms"


def test_the_index_agrees_with_simple_icd_10_cm() -> None:
    """Our streaming reader builds the same billable codes and titles as the
    package's tree (its leaves that are codes, not blocks)."""
    import simple_icd_10_cm as cm

    expected = {
        code: cm.get_description(code)
        for code in cm.get_all_codes(True)
        if cm.is_leaf(code) and "-" not in code  # blocks are named "A00-A09"
    }
    from apps.care.icd10 import _get_index

    ours = {c.code: c.description for c in _get_index().codes}
    assert ours == expected
