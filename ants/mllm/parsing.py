"""Turn raw MLLM text into negatives: ENS sentences and VSNL class names.

Conventions (decided here, used everywhere):

* **Case is kept** as the model wrote it (that is what the negatives log shows), and
  de-duplication is case-insensitive (``str.casefold``), keeping the first occurrence. CLIP's
  tokenizer lower-cases text anyway, so case never changes a text feature.
* :func:`normalise_sentences` is METHOD.md's normalisation: strip, drop ONE trailing ``"."``,
  collapse internal whitespace (newlines included), de-duplicate, drop empties. (The authors'
  code strips every trailing dot; the two differ only for answers ending in ``".."``.)
* An ENS answer is the whole generated text as one sentence (as the authors do; a newline
  becomes a space).
* A VSNL answer is a numbered list. Each line like ``1. leopard``, ``2) cheetah``,
  ``3 - jaguar``, ``**4.** Snow leopard``, ``- 5. lynx`` gives one name; markdown bullets and
  emphasis are removed, and so is an explanation after the name (``1. Leopard: spotted coat``,
  ``2. Lynx - short tail``, ``3. Ocelot (Leopardus pardalis)`` give ``Leopard``, ``Lynx``,
  ``Ocelot``). A list written on one line (``1. leopard 2. cheetah``) is split at the numbers.
  The queried class itself is dropped; at most ``max_items`` (5) names are kept.

Statuses (:class:`ants.mllm.base.Answer`): ``"ok"`` with at least one negative; ``"empty"``
when the text is blank or nothing usable is left (reason says why); ``"unparsable"`` when a
VSNL answer has no numbered line at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ants.mllm.base import Answer

_WS = re.compile(r"\s+")

# one numbered line: optional bullet, optional emphasis, a 1-2 digit number, a separator, the rest
_NUMBERED_LINE = re.compile(
    r"""^\s*
        (?:[-*+\u2022]\s+)?          # markdown bullet
        [*_]{0,2}\s*
        (?P<num>\d{1,2})
        \s*[*_]{0,2}
        \s*(?:[.):]|\s-|-|\u2013|\u2014)   # '1.', '1)', '1:', '1 -', '1-', dashes
        [*_]{0,2}\s*
        (?P<rest>.+?)\s*$""",
    re.VERBOSE,
)
# a list written on one line: '1. a 2. b 3. c'
_INLINE_ITEM = re.compile(r"(?:^|(?<=\s))(\d{1,2})[.)]\s+(.+?)(?=\s+\d{1,2}[.)]\s+|\s*$)")
_EXPLANATION = re.compile(r"\s*(?::|\s[-\u2013\u2014]\s|\().*$")
_EMPHASIS = re.compile(r"[*_`]+")


def normalise_sentences(texts: Iterable[str | None]) -> list[str]:
    """Strip, drop one trailing '.', collapse whitespace, de-duplicate (case-insensitive), drop empties.

    >>> normalise_sentences(["  A red  car. ", "a red car", "", "Blue sky.."])
    ['A red car', 'Blue sky.']
    """
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        if text is None:
            continue
        s = str(text).strip()
        if s.endswith("."):
            s = s[:-1]
        s = _WS.sub(" ", s).strip()
        if not s:
            continue
        key = s.casefold()
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def parse_ens_answer(raw: str | None, class_name: str) -> Answer:
    """One ENS answer -> an :class:`Answer` with at most one negative sentence.

    ``status="empty"`` when the text is blank after normalisation, or when it is nothing but
    the predicted ID class name (that would be a positive, not a negative).
    """
    raw = "" if raw is None else str(raw)
    sentences = normalise_sentences([raw])
    if not sentences:
        return Answer(raw_text=raw, status="empty", reason="the answer is empty")
    sentence = sentences[0]
    if sentence.casefold() == str(class_name).strip().casefold():
        return Answer(
            raw_text=raw,
            status="empty",
            reason=f"the answer is only the ID class name {class_name!r}",
        )
    return Answer(raw_text=raw, negatives=(sentence,))


def _clean_name(text: str) -> str:
    text = _EMPHASIS.sub("", text)
    text = _EXPLANATION.sub("", text)
    return text.strip().strip("\"'").rstrip(",;").strip()


def _numbered_items(raw: str) -> list[str]:
    items = []
    for line in raw.splitlines():
        m = _NUMBERED_LINE.match(line)
        if m:
            items.append(m.group("rest"))
    if len(items) <= 1:
        # maybe the whole list is on one line: "1. leopard 2. cheetah 3. jaguar"
        for line in raw.splitlines():
            inline = [m.group(2) for m in _INLINE_ITEM.finditer(line.strip())]
            if len(inline) > 1:
                return inline
    return items


def parse_numbered_list(
    raw: str | None, max_items: int = 5, class_name: str | None = None
) -> list[str]:
    """Class names from a numbered-list answer, cleaned and de-duplicated, at most ``max_items``.

    ``class_name`` (the queried class) is removed from the result when given.

    >>> parse_numbered_list("1. Leopard\\n2) cheetah\\n3 - **Jaguar**: spots\\n4. tiger", 3, "Tiger")
    ['Leopard', 'cheetah', 'Jaguar']
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    names = normalise_sentences(_clean_name(item) for item in _numbered_items(raw or ""))
    if class_name is not None:
        own = str(class_name).strip().casefold()
        names = [n for n in names if n.casefold() != own]
    return names[:max_items]


def parse_vsnl_answer(raw: str | None, class_name: str, max_items: int = 5) -> Answer:
    """One VSNL answer -> an :class:`Answer` whose negatives are the parsed class names."""
    raw = "" if raw is None else str(raw)
    if not raw.strip():
        return Answer(raw_text=raw, status="empty", reason="the answer is empty")
    if not _numbered_items(raw):
        return Answer(
            raw_text=raw,
            status="unparsable",
            reason="no numbered line like '1. name' in the answer",
        )
    names = parse_numbered_list(raw, max_items=max_items, class_name=class_name)
    if not names:
        return Answer(
            raw_text=raw,
            status="empty",
            reason=f"no class name left after removing the queried class {class_name!r} and blanks",
        )
    return Answer(raw_text=raw, negatives=tuple(names))


def parse_answer(kind: str, raw: str | None, class_name: str, max_items: int = 5) -> Answer:
    """Dispatch on the query kind ("ens" or "vsnl")."""
    if kind == "ens":
        return parse_ens_answer(raw, class_name)
    if kind == "vsnl":
        return parse_vsnl_answer(raw, class_name, max_items=max_items)
    raise ValueError(f"unknown query kind {kind!r}; valid kinds: ens, vsnl")
