r"""Turn raw MLLM text into negatives: ENS sentences and VSNL class names.

Two parsing **styles** (:data:`PARSE_STYLES`), chosen per run; the ANTS ``paper`` preset uses
``"lenient"`` and the ``authors_code`` preset uses ``"authors"``:

``"lenient"`` (the default; tolerant of chatty models)
    * normalisation (:func:`normalise_sentences`): strip, drop ONE trailing ``"."``, collapse
      internal whitespace (newlines included), drop empties, de-duplicate case-insensitively;
    * VSNL: each line like ``1. leopard``, ``2) cheetah``, ``3 - jaguar``, ``**4.** Snow
      leopard``, ``- 5. lynx`` gives one name; markdown bullets and emphasis are removed, and so
      is an explanation after the name (``1. Leopard: spotted coat``, ``2. Lynx - short tail``,
      ``3. Ocelot (Leopardus pardalis)`` give ``Leopard``, ``Lynx``, ``Ocelot``). A list written
      on one line (``1. leopard 2. cheetah``) is split at the numbers;
    * the queried class itself is dropped (VSNL), and an ENS answer that is nothing but the
      predicted class name is ``"empty"``.

``"authors"`` (exactly the authors' current ``openood/postprocessors/ants/labels.py``,
docs/METHOD.md section 6, "Answer normalisation and parsing")
    * normalisation: strip, strip EVERY trailing ``"."``, collapse whitespace, drop empties,
      de-duplicate case-insensitively (first kept);
    * VSNL: read line by line; a line counts only if it matches
      ``^\s*\d+[.):-]\s*(.+?)\s*$`` (a number IMMEDIATELY followed by one of ``. ) : -``); the
      whole rest of the line is the label. So ``"3 - Jaguar"`` is dropped, ``"1. Snow leopard:
      spotted"`` gives ``"Snow leopard: spotted"``, ``"1. a 2. b 3. c"`` gives ONE label
      ``"a 2. b 3. c"`` and ``"- 1. lynx"`` gives nothing;
    * the queried class is NOT dropped: docs/METHOD.md describes no such step in their code (and
      their VSNL prompt for LLaVA asks the model to exclude it), so neither do we.

Both styles: case is kept as the model wrote it (that is what the negatives log shows);
de-duplication uses ``str.casefold`` and keeps the first spelling (CLIP's tokenizer lower-cases
text anyway, so case never changes a text feature). An ENS answer is the whole generated text as
one sentence (a newline becomes a space). At most ``max_items`` (5) VSNL names are kept, counted
after cleaning and de-duplication.

**Normalised once**: an answer's negatives are final when they leave the parser. What the
method does with them afterwards follows the authors' code (``ants_postprocessor.py``,
``vsnl.py``) in both styles:

* ENS: the sentences of one update's ``ok`` answers are only de-duplicated
  (:func:`ens_update_sentences`), never cleaned again -- the authors normalise the raw answers
  of an update once; cleaning twice would strip dots that cleaning once keeps
  (``"A snowy mountain peak. ."`` -> ``"A snowy mountain peak."``, not ``"... peak"``);
* VSNL: the authors normalise a class's labels again when they cache them and the flattened
  cache once more (:func:`vsnl_class_labels`, :func:`vsnl_bank_labels`).

**Length limit** (``"lenient"`` only): a parsed negative longer than ``max_negative_chars``
(:data:`MAX_NEGATIVE_CHARS` = 200 characters by default; ``None`` = no limit) is not accepted --
it is dropped and the answer's ``reason`` says so. A real ENS sentence (under eight words) or
class name is far shorter; the limit only catches a model that rambles. The ``"authors"`` style
has no limit, as the authors' code: left at its default (:data:`BY_STYLE`) ``max_negative_chars``
means none, ``None`` is accepted, and any number is refused (ValueError naming the setting), so
no caller believes a limit applies that does not. The raw text itself is never shortened (it is
stored intact in the cache and the log).

Statuses (:class:`ants.mllm.base.Answer`): ``"ok"`` with at least one negative (``reason`` is
empty unless something was dropped for its length); ``"empty"`` when the text is blank or nothing
usable is left (reason says why); ``"unparsable"`` when a VSNL answer has no numbered line at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ants.mllm.base import Answer

PARSE_STYLES = ("lenient", "authors")
#: ``"lenient"``: a parsed negative longer than this many characters is dropped
MAX_NEGATIVE_CHARS = 200
#: ``max_negative_chars`` left to the style: :data:`MAX_NEGATIVE_CHARS` for ``"lenient"``, no
#: limit for ``"authors"`` (see :func:`negative_chars_limit`)
BY_STYLE = "by style"

_WS = re.compile(r"\s+")

# -- lenient style: one numbered line: optional bullet, optional emphasis, a 1-2 digit number,
# a separator, the rest
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

# -- authors' style: the regular expression of their labels.py
_AUTHORS_LINE = re.compile(r"^\s*\d+[.):-]\s*(.+?)\s*$")


def check_style(style: str) -> str:
    """``style`` if it is one of :data:`PARSE_STYLES`, else ValueError listing the valid ones."""
    if style not in PARSE_STYLES:
        raise ValueError(
            f"unknown answer parsing style {style!r}; valid styles: {', '.join(PARSE_STYLES)}"
        )
    return style


def negative_chars_limit(style: str, max_negative_chars: int | str | None = BY_STYLE) -> int | None:
    """The length limit ``style`` applies to parsed negatives (None: no limit).

    :data:`BY_STYLE` (the default): :data:`MAX_NEGATIVE_CHARS` for ``"lenient"``, none for
    ``"authors"``. ``None``: no limit. A positive int: that limit, ``"lenient"`` only -- the
    authors' code keeps every length, so a number with ``"authors"`` is a ValueError.
    """
    check_style(style)
    if max_negative_chars is None:
        return None
    if isinstance(max_negative_chars, str) and max_negative_chars == BY_STYLE:
        return MAX_NEGATIVE_CHARS if style == "lenient" else None
    if (
        not isinstance(max_negative_chars, int)
        or isinstance(max_negative_chars, bool)
        or max_negative_chars < 1
    ):
        raise ValueError(
            f"max_negative_chars: expected a positive int or None (no limit), got {max_negative_chars!r}"
        )
    if style == "authors":
        raise ValueError(
            f"max_negative_chars={max_negative_chars} does not apply to the 'authors' answer "
            "parser: the authors' code keeps negatives of every length; leave it unset or None "
            "(or parse with the 'lenient' style)"
        )
    return max_negative_chars


def _clean(text: str, style: str) -> str:
    s = str(text).strip()
    if style == "authors":
        s = s.rstrip(".")  # every trailing dot
    elif s.endswith("."):
        s = s[:-1]  # one trailing dot
    return _WS.sub(" ", s).strip()


def normalise_sentences(texts: Iterable[str | None], style: str = "lenient") -> list[str]:
    """Clean, drop empties, de-duplicate case-insensitively (first spelling kept).

    Cleaning is strip, drop the trailing ``"."`` (``"lenient"``: one; ``"authors"``: every one),
    collapse whitespace. ``None`` entries are skipped.

    >>> normalise_sentences(["  A red  car. ", "a red car", "", "Blue sky.."])
    ['A red car', 'Blue sky.']
    >>> normalise_sentences(["Blue sky..", "blue sky"], style="authors")
    ['Blue sky']
    """
    check_style(style)
    out: list[str] = []
    seen: set[str] = set()
    for text in texts:
        if text is None:
            continue
        s = _clean(text, style)
        if not s:
            continue
        key = s.casefold()
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def ens_update_sentences(negatives: Iterable[str]) -> list[str]:
    """The sentences one ENS update adds, from the negatives of its ``ok`` answers in order.

    They were normalised once by the parser, as the authors normalise an update's raw answers
    once; here they are only de-duplicated case-insensitively (first spelling kept), never
    cleaned again (both styles).

    >>> ens_update_sentences(["A snowy mountain peak.", "a snowy mountain PEAK.", "Grass"])
    ['A snowy mountain peak.', 'Grass']
    """
    out: list[str] = []
    seen: set[str] = set()
    for text in negatives:
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


def vsnl_class_labels(negatives: Iterable[str], style: str, keep: int) -> list[str]:
    """A VSNL class's cached labels from its answer's negatives: normalised again and cut to
    the first ``keep`` (the authors normalise a class's labels when they cache them)."""
    return normalise_sentences(negatives, style)[:keep]


def vsnl_bank_labels(cached: Iterable[str], style: str) -> list[str]:
    """The VSNL bank from the cached labels in cache order: normalised and de-duplicated once
    more, as the authors' flattened cache."""
    return normalise_sentences(cached, style)


def _split_long(items: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    if limit is None:
        return items, []
    return [s for s in items if len(s) <= limit], [s for s in items if len(s) > limit]


def _too_long_reason(dropped: list[str], limit: int | None, what: str) -> str:
    if not dropped:
        return ""
    longest = max(len(s) for s in dropped)
    n = len(dropped)
    return (
        f"dropped {n} {what}{'s' if n > 1 else ''} longer than {limit} characters "
        f"(max_negative_chars; the longest has {longest})"
    )


def parse_ens_answer(
    raw: str | None,
    class_name: str,
    style: str = "lenient",
    max_negative_chars: int | str | None = BY_STYLE,
) -> Answer:
    """One ENS answer -> an :class:`Answer` with at most one negative sentence.

    ``status="empty"`` when the text is blank after normalisation, when the sentence is longer
    than ``max_negative_chars``, or (``"lenient"`` only) when it is nothing but the predicted ID
    class name (that would be a positive, not a negative).
    """
    check_style(style)
    limit = negative_chars_limit(style, max_negative_chars)
    raw = "" if raw is None else str(raw)
    sentences = normalise_sentences([raw], style)
    if not sentences:
        return Answer(raw_text=raw, status="empty", reason="the answer is empty")
    sentence = sentences[0]
    if style == "lenient" and sentence.casefold() == str(class_name).strip().casefold():
        return Answer(
            raw_text=raw,
            status="empty",
            reason=f"the answer is only the ID class name {class_name!r}",
        )
    kept, dropped = _split_long([sentence], limit)
    if not kept:
        return Answer(
            raw_text=raw, status="empty", reason=_too_long_reason(dropped, limit, "sentence")
        )
    return Answer(raw_text=raw, negatives=(sentence,))


def _clean_name(text: str) -> str:
    text = _EMPHASIS.sub("", text)
    text = _EXPLANATION.sub("", text)
    return text.strip().strip("\"'").rstrip(",;").strip()


def _numbered_items(raw: str, style: str = "lenient") -> list[str]:
    """The text of each numbered item, before normalisation."""
    if style == "authors":
        items = []
        for line in raw.splitlines():
            m = _AUTHORS_LINE.match(line)
            if m:
                items.append(m.group(1))
        return items
    items = []
    for line in raw.splitlines():
        m = _NUMBERED_LINE.match(line)
        if m:
            items.append(_clean_name(m.group("rest")))
    if len(items) <= 1:
        # maybe the whole list is on one line: "1. leopard 2. cheetah 3. jaguar"
        for line in raw.splitlines():
            inline = [m.group(2) for m in _INLINE_ITEM.finditer(line.strip())]
            if len(inline) > 1:
                return [_clean_name(x) for x in inline]
    return items


def _names(
    raw: str, class_name: str | None, style: str, limit: int | None
) -> tuple[list[str], list[str]]:
    """(accepted names, names dropped for their length), before the ``max_items`` cut."""
    names = normalise_sentences(_numbered_items(raw, style), style)
    if class_name is not None and style == "lenient":
        own = str(class_name).strip().casefold()
        names = [n for n in names if n.casefold() != own]
    return _split_long(names, limit)


def parse_numbered_list(
    raw: str | None,
    max_items: int = 5,
    class_name: str | None = None,
    style: str = "lenient",
    max_negative_chars: int | str | None = BY_STYLE,
) -> list[str]:
    """Class names from a numbered-list answer, cleaned and de-duplicated, at most ``max_items``.

    ``"lenient"``: ``class_name`` (the queried class) is removed from the result when given;
    ``"authors"``: it is kept (see the module docstring). Names longer than
    ``max_negative_chars`` are dropped before the ``max_items`` cut.

    >>> parse_numbered_list("1. Leopard\\n2) cheetah\\n3 - **Jaguar**: spots\\n4. tiger", 3, "Tiger")
    ['Leopard', 'cheetah', 'Jaguar']
    >>> parse_numbered_list("1. Leopard\\n2) cheetah\\n3 - Jaguar\\n4. tiger", 3, "Tiger", style="authors")
    ['Leopard', 'cheetah', 'tiger']
    """
    check_style(style)
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    names, _ = _names(raw or "", class_name, style, negative_chars_limit(style, max_negative_chars))
    return names[:max_items]


def parse_vsnl_answer(
    raw: str | None,
    class_name: str,
    max_items: int = 5,
    style: str = "lenient",
    max_negative_chars: int | str | None = BY_STYLE,
) -> Answer:
    """One VSNL answer -> an :class:`Answer` whose negatives are the parsed class names."""
    check_style(style)
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    limit = negative_chars_limit(style, max_negative_chars)
    raw = "" if raw is None else str(raw)
    if not raw.strip():
        return Answer(raw_text=raw, status="empty", reason="the answer is empty")
    if not _numbered_items(raw, style):
        expected = (
            "numbered line (a number followed directly by . ) : or -, like '1. name')"
            if style == "authors"
            else "numbered line like '1. name'"
        )
        return Answer(raw_text=raw, status="unparsable", reason=f"no {expected} in the answer")
    names, dropped = _names(raw, class_name, style, limit)
    too_long = _too_long_reason(dropped, limit, "class name")
    if not names:
        if too_long:
            reason = f"no class name left: {too_long}"
        elif style == "lenient":
            reason = (
                f"no class name left after removing the queried class {class_name!r} and blanks"
            )
        else:
            reason = "no class name left after removing blanks"
        return Answer(raw_text=raw, status="empty", reason=reason)
    return Answer(raw_text=raw, negatives=tuple(names[:max_items]), reason=too_long)


#: EOE's list lines: ``- name`` (their ``stringtolist``); lenient also ``* name``, ``• name``
_EOE_BULLET = re.compile(r"^\s*[-*+\u2022]\s+(?P<rest>.+?)\s*$")


def parse_eoe_answer(
    raw: str | None, style: str = "lenient", max_negative_chars: int | str | None = BY_STYLE
) -> Answer:
    """An EOE answer (envisioned outlier class names, :mod:`ants.methods.eoe`) -> an
    :class:`Answer` whose negatives are the names, in order, de-duplicated case-insensitively.

    ``"authors"`` (EOE's ``stringtolist``): every line starting with ``"- "`` gives the rest of
    the line, nothing else. ``"lenient"``: bullet lines (``-``, ``*``, ``+``, ``•``) and numbered
    lines (as VSNL's), explanations after the name removed; an answer that is one line of
    comma-separated names (the style of EOE's one-shot examples) is split at the commas. No
    item cap (EOE asks for up to 50 names per turn). ``"unparsable"`` when no line is a list
    item."""
    check_style(style)
    limit = negative_chars_limit(style, max_negative_chars)
    raw = "" if raw is None else str(raw)
    if not raw.strip():
        return Answer(raw_text=raw, status="empty", reason="the answer is empty")
    if style == "authors":
        items = [line[2:] for line in raw.split("\n") if line.startswith("- ")]
    else:
        items = []
        for line in raw.splitlines():
            m = _EOE_BULLET.match(line)
            if m:
                items.append(_clean_name(m.group("rest")))
        if not items:
            items = _numbered_items(raw, "lenient")
        if not items:
            lines = [x for x in raw.splitlines() if x.strip()]
            if len(lines) == 1 and "," in lines[0]:
                items = [_clean_name(x) for x in lines[0].split(",")]
    if not items:
        return Answer(
            raw_text=raw, status="unparsable", reason="no list item ('- name') in the answer"
        )
    names, dropped = _split_long(normalise_sentences(items, style), limit)
    too_long = _too_long_reason(dropped, limit, "class name")
    if not names:
        return Answer(raw_text=raw, status="empty", reason=too_long or "no class name left")
    return Answer(raw_text=raw, negatives=tuple(names), reason=too_long)


def parse_answer(
    kind: str,
    raw: str | None,
    class_name: str,
    max_items: int = 5,
    style: str = "lenient",
    max_negative_chars: int | str | None = BY_STYLE,
) -> Answer:
    """Dispatch on the query kind ("ens", "vsnl" or "eoe"); ``style`` is one of
    :data:`PARSE_STYLES`."""
    check_style(style)
    if kind == "ens":
        return parse_ens_answer(raw, class_name, style, max_negative_chars)
    if kind == "vsnl":
        return parse_vsnl_answer(raw, class_name, max_items, style, max_negative_chars)
    if kind == "eoe":
        return parse_eoe_answer(raw, style, max_negative_chars)
    raise ValueError(f"unknown query kind {kind!r}; valid kinds: ens, vsnl, eoe")
