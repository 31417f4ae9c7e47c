"""ICD-10-CM: the codes a diagnosis may carry, and search over them.

The code list is the CDC's ICD-10-CM (public domain) as shipped by the
``simple-icd-10-cm`` package: its tabular XML and its list of valid codes.
Only billable codes (the leaves of the tabular list, with their seventh
characters) may be recorded. The package itself keeps the whole tree with
every note in memory (about 180 MB per process); we read the same two files
once, lazily, into a compact index of about 74,000 codes instead (a few MB,
about a second to build), so that web and worker processes that never search
pay nothing. tests/care/test_icd10.py checks that the two agree.

Our own Chinese names for the common primary-care codes live in
data/icd10_zh_hans.csv (data/README.md); Chinese words search those, and
Chinese readers see them where we have one.

Search (``icd10_search``) takes a code prefix ("I1", "e11.6", "E116") or
words ("type 2 diabetes hyperglycemia", "diab neph", "高血压"): every word
must start a word of the description (English) or appear in the name
(Chinese). The common primary-care codes come first, then shorter codes.
"""

from __future__ import annotations

import csv
import heapq
import importlib.util
import re
import threading
import unicodedata
import xml.etree.ElementTree as ET
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent / "data"
ZH_HANS_CSV = DATA_DIR / "icd10_zh_hans.csv"
CODE_MAX_LENGTH = 8  # "S72.001A"
QUERY_MAX_LENGTH = 100
DEFAULT_LIMIT = 20

_CODE_QUERY = re.compile(r"^[A-Z][0-9][0-9A-Z]?\.?[0-9A-Z]{0,4}$")
_WORD = re.compile(r"[a-z0-9]+")
_HAN = re.compile(r"[\u3400-\u9fff]")
_HAN_SEPARATORS = re.compile(r"[\s,;\uff0c\u3001\uff1b]+")  # and the full-width comma, enumeration comma, semicolon
# Words too common to narrow a search, ignored beside others ("fracture of femur").
_STOP_WORDS = frozenset({"a", "an", "and", "as", "at", "by", "due", "for", "in", "of", "on", "or", "the", "to", "with"})


@dataclass(frozen=True, slots=True)
class Icd10Code:
    code: str  # with its dot: "E11.9"
    description: str  # the CDC's English title
    description_zh_hans: str = ""  # ours, for the common codes

    def label(self, language: str | None = None) -> str:
        """The name a reader of ``language`` should see."""
        if language and language.lower().startswith("zh") and self.description_zh_hans:
            return self.description_zh_hans
        return self.description

    def as_json(self, language: str | None = None) -> dict[str, str]:
        return {
            "code": self.code,
            "description": self.description,
            "label": self.label(language),
        }


def icd10_normalise(code: str) -> str:
    """ "e119" / " E11.9 " → "E11.9" (no check that it exists)."""
    compact = code.strip().upper().replace(".", "")
    if len(compact) <= 3:
        return compact
    return f"{compact[:3]}.{compact[3:]}"


class _Index:
    def __init__(self, rows: list[tuple[str, str]], zh_hans: dict[str, str]) -> None:
        rows.sort()
        self.codes: list[Icd10Code] = [Icd10Code(code, desc, zh_hans.get(code, "")) for code, desc in rows]
        self.by_code: dict[str, int] = {c.code: i for i, c in enumerate(self.codes)}
        self.compact: list[str] = [c.code.replace(".", "") for c in self.codes]  # sorted like codes
        self.common: frozenset[int] = frozenset(self.by_code[code] for code in zh_hans if code in self.by_code)
        postings: dict[str, set[int]] = {}
        for i, c in enumerate(self.codes):
            for word in _WORD.findall(_fold(c.description)):
                postings.setdefault(word, set()).add(i)
        self.words: list[str] = sorted(postings)
        self.postings: list[array[int]] = [array("I", sorted(postings[w])) for w in self.words]
        self.zh_hans: list[tuple[str, int]] = [
            (name, self.by_code[code]) for code, name in zh_hans.items() if code in self.by_code
        ]

        # Each code's place in the order results are shown in: the common
        # codes first, then shorter (less specific) codes, then by code.
        ranked = sorted(
            range(len(self.codes)),
            key=lambda i: (0 if i in self.common else 1, len(self.codes[i].code), self.codes[i].code),
        )
        self.rank_of: list[int] = [0] * len(ranked)
        for place, i in enumerate(ranked):
            self.rank_of[i] = place

    def best(self, found: Iterable[int], limit: int) -> list[Icd10Code]:
        return [self.codes[i] for i in heapq.nsmallest(limit, found, key=self.rank_of.__getitem__)]

    def by_prefix(self, prefix: str) -> list[int]:
        start = bisect_left(self.compact, prefix)
        found: list[int] = []
        for i in range(start, len(self.compact)):
            if not self.compact[i].startswith(prefix):
                break
            found.append(i)
        return found

    def by_word_prefix(self, prefix: str) -> set[int]:
        start = bisect_left(self.words, prefix)
        found: set[int] = set()
        for j in range(start, len(self.words)):
            if not self.words[j].startswith(prefix):
                break
            found.update(self.postings[j])
        return found


_index: _Index | None = None
_lock = threading.Lock()


def _fold(text: str) -> str:
    """Lower case without accents ("Ménière's" → "meniere's")."""
    text = text.casefold()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _package_data_dir() -> Path:
    """simple_icd_10_cm's data directory, found without importing the
    package (its import builds the whole tree)."""
    spec = importlib.util.find_spec("simple_icd_10_cm")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("simple_icd_10_cm is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _read_cdc_rows() -> list[tuple[str, str]]:
    """(code, title) of every billable code, as simple_icd_10_cm builds them:
    the leaves of the tabular list, where a code that takes a seventh
    character gives way to its extensions found in the list of valid codes.
    Streamed (iterparse), so the 10 MB tree is never whole in memory."""
    valid: set[str] = set()
    tabular = None
    for entry in _package_data_dir().iterdir():
        if entry.name.startswith("code-list") and entry.name.endswith(".txt"):
            valid = {line.split(" ")[0].replace(".", "") for line in entry.read_text("utf-8").splitlines()}
        elif entry.name.startswith("icd10c-tabular") and entry.name.endswith(".xml"):
            tabular = entry
    if tabular is None or not valid:
        raise RuntimeError("simple_icd_10_cm's data files are missing")

    rows: list[tuple[str, str]] = []
    tags: list[str] = []  # the open elements
    # one frame per open <diag>: name, title, its seventh characters (its own
    # or inherited), whether it has a <diag> child
    frames: list[dict[str, object]] = []
    with tabular.open("rb") as f:
        for event, element in ET.iterparse(f, events=("start", "end")):  # noqa: S314 - the package's own file
            if event == "start":
                if element.tag == "diag":
                    inherited = frames[-1]["extensions"] if frames else None
                    if frames:
                        frames[-1]["parent"] = True
                    frames.append({"name": "", "desc": "", "extensions": inherited, "parent": False})
                tags.append(element.tag)
                continue
            tags.pop()
            in_diag = bool(tags) and tags[-1] == "diag"
            if element.tag in ("name", "desc") and in_diag:
                frames[-1][element.tag] = (element.text or "").strip()
            elif element.tag == "sevenChrDef" and in_diag:
                extensions: dict[str, str] = {}
                last = ""
                for child in element:
                    if child.tag == "extension":
                        last = child.attrib["char"]
                        extensions[last] = child.text or ""
                    elif child.tag == "note" and last and child.text:
                        extensions[last] += "/" + child.text
                frames[-1]["extensions"] = extensions
            elif element.tag == "diag":
                frame = frames.pop()
                if not frame["parent"]:
                    rows.extend(_leaf_rows(frame, valid))
                element.clear()
            elif element.tag in ("section", "chapter", "introduction"):
                element.clear()
    return rows


def _leaf_rows(frame: dict[str, object], valid: set[str]) -> list[tuple[str, str]]:
    name, desc = str(frame["name"]), str(frame["desc"])
    extensions = frame["extensions"]
    if isinstance(extensions, dict) and extensions:
        base = (name if len(name) > 3 else name + ".").ljust(7, "X")
        extended = [
            (base + char, f"{desc}, {meaning}")
            for char, meaning in extensions.items()
            if (base[:3] + base[4:] + char) in valid
        ]
        if extended:
            return extended
    return [(name, desc)]


def _read_zh_hans() -> dict[str, str]:
    names: dict[str, str] = {}
    with ZH_HANS_CSV.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            names[icd10_normalise(row["code"])] = row["name_zh_hans"].strip()
    return names


_zh_hans: dict[str, str] | None = None


def _zh_hans_names() -> dict[str, str]:
    global _zh_hans
    if _zh_hans is None:
        _zh_hans = _read_zh_hans()
    return _zh_hans


def icd10_label(*, code: str, description: str, language: str | None = None) -> str:
    """The name of a stored diagnosis for a reader of ``language``: our
    Chinese name where we have one, else the English title stored with it.
    Reads only the small Chinese list, never the whole code index, so pages
    that show diagnoses don't pay for building it."""
    if language and language.lower().startswith("zh"):
        name = _zh_hans_names().get(icd10_normalise(code))
        if name:
            return name
    return description


def _get_index() -> _Index:
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = _Index(_read_cdc_rows(), _zh_hans_names())
    return _index


def icd10_get(code: str) -> Icd10Code | None:
    """The billable code ``code`` (any case, with or without its dot), or None."""
    if not code or len(code.strip()) > CODE_MAX_LENGTH + 2:
        return None
    index = _get_index()
    position = index.by_code.get(icd10_normalise(code))
    return None if position is None else index.codes[position]


def icd10_search(*, query: str, limit: int = DEFAULT_LIMIT) -> list[Icd10Code]:
    """Billable codes matching ``query``: a code prefix, English word
    prefixes or Chinese words; the common primary-care codes first."""
    text = query.strip()[:QUERY_MAX_LENGTH]
    if not text:
        return []
    index = _get_index()
    upper = text.upper()
    if _CODE_QUERY.match(upper):
        found = index.by_prefix(upper.replace(".", ""))
        if found:
            return index.best(found, limit)
    hits: set[int] | None = None
    han = [part for part in _HAN_SEPARATORS.split(text) if _HAN.search(part)]
    for part in han:
        matched = {i for name, i in index.zh_hans if part in name}
        hits = matched if hits is None else hits & matched
    words = [w for w in _WORD.findall(_fold(text)) if w not in _STOP_WORDS]
    if not han and (not words or len(text) < 2):
        return []  # only little words ("of"), or one letter: too broad to mean anything
    for word in words:
        if hits is not None and not hits:
            break
        matched = index.by_word_prefix(word)
        hits = matched if hits is None else hits & matched
    if not hits:
        return []
    return index.best(hits, limit)


def icd10_warm() -> None:
    """Builds the index now (a management command or a test may want the
    second it takes out of the first search)."""
    _get_index()
