"""``{% id_url %}``: ``{% url name id %}`` for the rows of a long list (the
dashboard's triage queue and day), each with several links by id.

Django's ``{% url %}`` resolves the name again for every link (about 20 µs
each: a few milliseconds for a full triage queue); this one reverses the name
once per language and script prefix, with a marker id, and then only puts the
row's id in its place. Only for URLs whose one argument is an integer id."""

from __future__ import annotations

from django import template
from django.urls import get_script_prefix, reverse
from django.utils.translation import get_language

register = template.Library()

_MARKER = 9_876_543_210  # an id no URL of a single id contains otherwise
_PATTERNS: dict[tuple[str, str, str | None], tuple[str, str] | None] = {}


def _pattern(name: str) -> tuple[str, str] | None:
    """The URL of ``name`` split around its id (``None``: the id does not
    appear once, so ``reverse`` it each time)."""
    key = (name, get_script_prefix(), get_language())
    if key not in _PATTERNS:
        parts = reverse(name, args=[_MARKER]).split(str(_MARKER))
        _PATTERNS[key] = (parts[0], parts[1]) if len(parts) == 2 else None
    return _PATTERNS[key]


@register.simple_tag
def id_url(name: str, pk: int) -> str:
    pattern = _pattern(name)
    if pattern is None:
        return reverse(name, args=[pk])
    return f"{pattern[0]}{int(pk)}{pattern[1]}"
