"""The documentation is part of the product: self-contained, its references resolve, its
examples run.

* no file of the repository points outside it (to the spec folder the project started from);
* every "METHOD.md section N" (or ``"<heading>"``) reference names a section of docs/METHOD.md;
* every relative link of README.md and docs/*.md reaches a file (and heading) that exists;
* the examples of docs/API.md, README.md and the package's docstrings run (doctest).
"""

from __future__ import annotations

import doctest
import importlib
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
METHOD = ROOT / "docs" / "METHOD.md"
#: what must not appear anywhere (spelled in two pieces so this file does not contain them)
OUTSIDE = ("../" + "shared", "shared" + "/spec")
DOCTEST_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def repo_files() -> list[Path]:
    """Tracked and untracked, not ignored files (what a clone or a commit of this tree holds)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        names = [n for n in out.decode("utf-8").split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk the tree
        skip = {".git", ".venv", "results", "reports", ".snakemake", ".dvc"}
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*")
            if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        ]
    return [ROOT / n for n in names if (ROOT / n).is_file()]


def text_files() -> dict[Path, str]:
    out = {}
    for path in repo_files():
        data = path.read_bytes()
        if b"\0" in data[:4096]:
            continue  # binary
        out[path] = data.decode("utf-8", errors="replace")
    return out


# -- (a) a self-contained repository ----------------------------------------------------------


def test_no_file_points_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path, text in text_files().items()
        for n, line in enumerate(text.splitlines(), start=1)
        if any(s in line for s in OUTSIDE)
    ]
    assert not offenders, "references outside the repository:\n" + "\n".join(offenders)


def method_headings() -> tuple[dict[int, str], list[str]]:
    """``({number: title} of the numbered sections, every heading's text)`` of docs/METHOD.md."""
    text = METHOD.read_text(encoding="utf-8")
    numbered = {int(m[1]): m[2] for m in re.finditer(r"^## (\d+)\. (.+)$", text, re.M)}
    headings = [m[1].strip() for m in re.finditer(r"^#+ (.+)$", text, re.M)]
    return numbered, headings


def test_method_sections_are_numbered_1_to_11_in_order():
    numbered, _ = method_headings()
    assert list(numbered) == list(range(1, 12))


#: "METHOD.md section 6", "METHOD.md sections 6, 7 and 10", "METHOD.md 6, 7"
NUMBERED_REF = re.compile(r"METHOD\.md,?\s+(?:sections?\s+)?(\d+(?:\s*(?:,|and)\s*\d+)*)")
#: 'METHOD.md, "MLLM prompts"', 'METHOD.md section 6, "Answer normalisation and parsing"'
NAMED_REF = re.compile(r'METHOD\.md,?\s*(?:section\s+\d+,\s*)?\(?"([^"]+)"')


def method_references() -> list[tuple[str, str, str]]:
    """``(file, kind, value)`` of every reference into METHOD.md, read across line breaks and
    comment markers (a reference may continue on the next comment or docstring line)."""
    refs = []
    for path, text in text_files().items():
        if path in (METHOD, Path(__file__).resolve()) or "METHOD.md" not in text:
            continue
        flat = re.sub(r"\s*\n\s*(?:#+:?\s*|//\s*)?", " ", text)
        name = str(path.relative_to(ROOT))
        for m in NUMBERED_REF.finditer(flat):
            refs += [(name, "section", n) for n in re.findall(r"\d+", m[1])]
        refs += [(name, "heading", m[1]) for m in NAMED_REF.finditer(flat)]
    return refs


def test_every_method_reference_names_an_existing_section():
    numbered, headings = method_headings()
    refs = method_references()
    # the code, tests, configs and docs point into it in many places: the check is not vacuous
    assert len({r for r in refs if r[1] == "section"}) >= 30
    assert {r[2] for r in refs if r[1] == "heading"} >= {
        "MLLM prompts",
        "Answer normalisation and parsing",
    }
    bad = [
        r
        for r in refs
        if (r[1] == "section" and int(r[2]) not in numbered)
        or (r[1] == "heading" and not any(h.startswith(r[2]) for h in headings))
    ]
    assert not bad, f"references to sections docs/METHOD.md does not have: {bad}"


def test_the_reference_check_catches_a_wrong_section():
    numbered, _ = method_headings()
    flat = 'see METHOD.md section 12 and METHOD.md sections 6, 7 and 10, METHOD.md, "No such"'
    found = [n for m in NUMBERED_REF.finditer(flat) for n in re.findall(r"\d+", m[1])]
    assert found == ["12", "6", "7", "10"] and 12 not in numbered
    assert [m[1] for m in NAMED_REF.finditer(flat)] == ["No such"]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def markdown_links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)  # not inside code blocks
    return re.findall(r"\[[^\]]*\]\(([^)\s]+)\)", text)


def anchors(path: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", path.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {github_slug(m[1]) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(doc):
    bad = []
    links = markdown_links(doc)
    for link in links:
        if re.match(r"^[a-z][a-z0-9+.-]*:", link):  # http:, https:, mailto:
            continue
        target, _, anchor = link.partition("#")
        dest = (doc.parent / target).resolve() if target else doc
        if not dest.exists() or ROOT not in (dest, *dest.parents):
            bad.append(f"{link} (no such file in the repository)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            bad.append(f"{link} (no heading #{anchor} in {dest.relative_to(ROOT)})")
    assert not bad, f"{doc.relative_to(ROOT)}: broken links: {bad}"


def test_the_link_check_sees_links_and_headings():
    assert github_slug("7. Paper or authors' code: every difference is a switch") == (
        "7-paper-or-authors-code-every-difference-is-a-switch"
    )
    assert github_slug("Plan -> answer -> replay") == "plan---answer---replay"
    readme = markdown_links(ROOT / "README.md")
    assert {"docs/METHOD.md", "docs/API.md", "docs/ARCHITECTURE.md"} <= set(readme)
    assert any("#" in link for link in markdown_links(METHOD))


# -- (b) examples that run --------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    # API.md's examples mine negatives and run every method: a minute, so in the slow tier
    [pytest.param("docs/API.md", marks=pytest.mark.slow), "README.md"],
)
def test_markdown_examples_run(doc):
    result = doctest.testfile(str(ROOT / doc), module_relative=False, optionflags=DOCTEST_FLAGS)
    assert result.attempted > 10
    assert result.failed == 0, f"{result.failed} of the examples in {doc} failed (output above)"


def modules_with_examples() -> list[str]:
    names = []
    for path in sorted((ROOT / "ants").rglob("*.py")):
        if ">>>" in path.read_text(encoding="utf-8"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_modules_with_examples_are_found():
    assert {"ants.scores", "ants.mining", "ants.progress", "ants.streams"} <= set(
        modules_with_examples()
    )


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=DOCTEST_FLAGS)
    assert result.failed == 0, (
        f"{result.failed} docstring example(s) of {name} failed (output above)"
    )
