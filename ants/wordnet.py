"""WordNet 3.0 noun and adjective lemmas, shipped with the package.

NegMining (docs/METHOD.md section 3) draws its candidate negative labels from WordNet 3.0 nouns and
adjectives. The package ships a compact table built from WordNet's own database files, so no
network access, NLTK download or system package is needed at run time:

    ants/data/wordnet/lemmas.tsv.gz   the table (gzip-compressed, tab-separated, UTF-8)
    ants/data/wordnet/LICENSE         the WordNet 3.0 licence (it must travel with the data)
    ants/data/wordnet/README.md       how the table was generated

The table is rebuilt with ``python -m ants.wordnet build --from /usr/share/wordnet --out
ants/data/wordnet/`` (Debian/Ubuntu package ``wordnet-base``; any WordNet 3.0 ``dict/``
directory works). The output is byte-for-byte reproducible (gzip header time stamp fixed to 0).

Table columns (one row per lemma and part of speech)
----------------------------------------------------
``lemma``
    The word or phrase, underscores replaced by spaces (``hot_dog`` -> ``hot dog``) and, for
    adjectives, the syntactic marker stripped (``galore(ip)`` -> ``galore``; markers are
    ``(a)``, ``(p)``, ``(ip)``).
``pos``
    ``'noun'`` or ``'adj'`` (WordNet's ``a`` head and ``s`` satellite adjectives are both
    ``'adj'``).
``lexnames``
    Every lexicographer file of the lemma's synsets in that part of speech, sorted and joined
    by ``';'``, e.g. ``'noun.animal;noun.food'``. Nouns: ``noun.Tops`` .. ``noun.time``;
    adjectives: ``adj.all``, ``adj.pert``, ``adj.ppl``.
``is_also_noun``
    For adjectives: whether the same lemma (case-insensitively) is also a WordNet noun (the
    ANTS authors' re-implementation drops those adjectives). Always ``False`` on noun rows.

De-duplication (a decision, documented here)
--------------------------------------------
Lemmas are de-duplicated **case-insensitively within a part of speech**: ``China`` (the
country) and ``china`` (porcelain) become one noun row. CLIP's tokenizer lower-cases its input,
so case variants would encode to identical text features and only duplicate a negative label.
This is also how WordNet's own ``index.noun`` / ``index.adj`` key their lemmas, so the row
counts equal the line counts of those index files (117,798 nouns, 21,479 adjectives). The
spelling kept is the all-lower-case variant when one exists, otherwise the first variant in
code-point order; ``lexnames`` is the union over the variants. A lemma that is both a noun and
an adjective keeps one row per part of speech. Rows are ordered by ``pos`` (nouns first), then
by the case-folded lemma, then by the lemma.
"""

from __future__ import annotations

import argparse
import gzip
import io
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a table is built or read: the workflow's
    import pandas as pd  # planning asks for pool sizes (candidate_pool_sizes) without it

__all__ = [
    "COLUMNS",
    "CORPUS_FILENAME",
    "LEXNAMES",
    "CorpusError",
    "WordNetFormatError",
    "WordNetEntry",
    "build_lemma_table",
    "candidate_pool_sizes",
    "candidate_rule",
    "check_corpus",
    "corpus_path",
    "load_corpus",
    "parse_data_file",
    "write_lemma_table",
]

#: Lexicographer file names by number (WordNet 3.0, ``lexnames(5WN)``).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather",
    "adj.ppl",
)  # fmt: skip

COLUMNS: tuple[str, ...] = ("lemma", "pos", "lexnames", "is_also_noun")
CORPUS_FILENAME = "lemmas.tsv.gz"
LEXNAME_SEPARATOR = ";"

# data file name -> (pos label, allowed ss_type letters, lexname prefix)
_DATA_FILES: dict[str, tuple[str, frozenset[str], str]] = {
    "data.noun": ("noun", frozenset("n"), "noun."),
    "data.adj": ("adj", frozenset("as"), "adj."),
}
_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")

# check_corpus's plausibility bounds (WordNet 3.0: 117,798 nouns, 21,479 adjectives)
_MIN_NOUNS = 80_000
_MIN_ADJS = 15_000
_REGENERATE = "python -m ants.wordnet build --from /usr/share/wordnet --out ants/data/wordnet/"


class WordNetFormatError(ValueError):
    """A WordNet database file does not have the expected format (message names file and line)."""


class CorpusError(RuntimeError):
    """The shipped lemma table is missing, unreadable or implausible."""


@dataclass(frozen=True)
class WordNetEntry:
    """One word of one synset: ``lemma`` (spaces, marker stripped), ``pos``, ``lexname``."""

    lemma: str
    pos: str
    lexname: str
    offset: int


def _clean_lemma(word: str) -> str:
    return _ADJ_MARKER.sub("", word).replace("_", " ")


def parse_data_file(path: str | Path, pos: str | None = None) -> Iterator[WordNetEntry]:
    """Yield every word of every synset in a WordNet ``data.noun`` or ``data.adj`` file.

    A synset line reads ``offset lex_filenum ss_type w_cnt word lex_id [word lex_id ...]
    p_cnt ... | gloss`` with ``w_cnt`` two hexadecimal digits; lines that begin with a space
    are the licence header and are skipped. ``pos`` ('noun' or 'adj') defaults from the file
    name. Raises :class:`WordNetFormatError` naming the file and line on malformed input.
    """
    path = Path(path)
    if pos is None:
        if path.name not in _DATA_FILES:
            raise WordNetFormatError(
                f"{path}: cannot tell the part of speech from the file name; expected one of "
                f"{sorted(_DATA_FILES)} or pass pos='noun'/'adj'"
            )
        pos = _DATA_FILES[path.name][0]
    spec = {p: (types, prefix) for p, types, prefix in _DATA_FILES.values()}
    if pos not in spec:
        raise ValueError(f"pos must be one of {sorted(spec)}, got {pos!r}")
    ss_types, prefix = spec[pos]
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip() or line.startswith(" "):
                continue
            where = f"{path}, line {lineno}"
            fields = line.split(" | ", 1)[0].split()
            try:
                offset = int(fields[0])
                lex_filenum = int(fields[1])
                ss_type = fields[2]
                w_cnt = int(fields[3], 16)
            except (IndexError, ValueError):
                raise WordNetFormatError(
                    f"{where}: expected 'offset lex_filenum ss_type w_cnt ...', got {line[:80]!r}"
                ) from None
            if ss_type not in ss_types:
                raise WordNetFormatError(
                    f"{where}: synset type {ss_type!r} is not a {pos} type {sorted(ss_types)}"
                )
            if not 0 <= lex_filenum < len(LEXNAMES) or not LEXNAMES[lex_filenum].startswith(prefix):
                raise WordNetFormatError(
                    f"{where}: lex_filenum {lex_filenum} is not a {pos} lexicographer file"
                )
            words = fields[4 : 4 + 2 * w_cnt : 2]
            if w_cnt == 0 or len(fields) < 4 + 2 * w_cnt:
                raise WordNetFormatError(f"{where}: w_cnt={w_cnt} but the line has too few words")
            for word in words:
                lemma = _clean_lemma(word)
                if not lemma.strip():
                    raise WordNetFormatError(f"{where}: empty lemma {word!r}")
                yield WordNetEntry(lemma, pos, LEXNAMES[lex_filenum], offset)


def _merge(entries: Iterator[WordNetEntry]) -> dict[str, tuple[set[str], set[str]]]:
    """Case-folded lemma -> (spelling variants, lexnames)."""
    merged: dict[str, tuple[set[str], set[str]]] = {}
    for e in entries:
        variants, lexnames = merged.setdefault(e.lemma.casefold(), (set(), set()))
        variants.add(e.lemma)
        lexnames.add(e.lexname)
    return merged


def _preferred(variants: set[str]) -> str:
    lower = [v for v in variants if v == v.lower()]
    return min(lower) if lower else min(variants)


def build_lemma_table(wordnet_dir: str | Path) -> pd.DataFrame:
    """Build the lemma table (columns :data:`COLUMNS`) from a WordNet 3.0 ``dict`` directory.

    Reads ``data.noun`` and ``data.adj``; see the module docstring for the columns, the
    case-insensitive de-duplication and the row order.
    """
    wordnet_dir = Path(wordnet_dir)
    merged = {}
    for filename, (pos, _, _) in _DATA_FILES.items():
        path = wordnet_dir / filename
        if not path.is_file():
            raise FileNotFoundError(
                f"WordNet data file not found: {path} (expected a WordNet 3.0 dict directory "
                f"holding {' and '.join(_DATA_FILES)}, e.g. /usr/share/wordnet from wordnet-base)"
            )
        merged[pos] = _merge(parse_data_file(path, pos))
    nouns = set(merged["noun"])
    rows = []
    for pos in ("noun", "adj"):
        for key in sorted(merged[pos]):
            variants, lexnames = merged[pos][key]
            lemma = _preferred(variants)
            rows.append(
                (
                    lemma,
                    pos,
                    LEXNAME_SEPARATOR.join(sorted(lexnames)),
                    pos == "adj" and key in nouns,
                )
            )
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["is_also_noun"] = table["is_also_noun"].astype(bool)
    return table


def write_lemma_table(table: pd.DataFrame, out_dir: str | Path) -> Path:
    """Write ``table`` to ``out_dir/lemmas.tsv.gz`` reproducibly (gzip mtime 0); return the path."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"lemma table lacks columns {missing}; expected {list(COLUMNS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(COLUMNS)]
    for lemma, pos, lexnames, also_noun in table.loc[:, list(COLUMNS)].itertuples(index=False):
        fields = (str(lemma), str(pos), str(lexnames))
        if any(ch in f for f in fields for ch in "\t\r\n"):
            raise ValueError(f"lemma table row {fields!r} contains a tab or line break")
        lines.append("\t".join((*fields, "True" if also_noun else "False")))
    text = "\n".join(lines) + "\n"
    path = out_dir / CORPUS_FILENAME
    tmp = path.with_name(path.name + ".tmp")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz,
    ):
        gz.write(text.encode("utf-8"))
    tmp.replace(path)
    return path


def corpus_path() -> Path:
    """Path of the shipped table inside the installed package."""
    return Path(str(resources.files("ants") / "data" / "wordnet" / CORPUS_FILENAME))


def _read_table(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise CorpusError(
            f"WordNet lemma table not found: {path}. Regenerate it with: {_REGENERATE}"
        )
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
        table = pd.read_csv(
            io.BytesIO(data),
            sep="\t",
            dtype={"lemma": str, "pos": str, "lexnames": str, "is_also_noun": bool},
            keep_default_na=False,
            na_filter=False,
            quoting=3,  # csv.QUOTE_NONE: lemmas may hold quotes and apostrophes
        )
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise CorpusError(
            f"cannot read WordNet lemma table {path}: {exc}. Regenerate it with: {_REGENERATE}"
        ) from exc
    if list(table.columns) != list(COLUMNS):
        raise CorpusError(f"{path}: columns {list(table.columns)}, expected {list(COLUMNS)}")
    return table


@lru_cache(maxsize=4)
def _load_cached(path: str) -> pd.DataFrame:
    return _read_table(Path(path))


def load_corpus(path: str | Path | None = None) -> pd.DataFrame:
    """The WordNet lemma table (columns :data:`COLUMNS`) as a new DataFrame.

    ``path`` defaults to the table shipped in ``ants/data/wordnet/``. Read once per process and
    cached; each call returns a copy, so callers may modify it.
    """
    p = Path(path) if path is not None else corpus_path()
    return _load_cached(str(p.resolve())).copy()


def candidate_rule(
    pos: str,
    lexnames: str,
    is_also_noun: bool,
    *,
    exclude_lexnames: frozenset[str] | set[str] = frozenset(),
    drop_adjectives_that_are_nouns: bool = True,
) -> str | None:
    """Which rule of NegMining's step 1 (:func:`ants.mining.candidate_pools`) removes a lemma
    on its lexicographer categories and part of speech alone: ``'lexname'`` (all of its
    ``lexnames`` are excluded), ``'adjective_is_noun'``, or None (kept). The ID-name rule
    needs the class names and is applied by the caller."""
    if exclude_lexnames and set(lexnames.split(LEXNAME_SEPARATOR)) <= exclude_lexnames:
        return "lexname"
    if pos == "adj" and drop_adjectives_that_are_nouns and is_also_noun:
        return "adjective_is_noun"
    return None


@lru_cache(maxsize=4)
def _row_kinds(path: str) -> tuple[tuple[str, str, bool, int], ...]:
    """``(pos, lexnames, is_also_noun, rows)`` of every combination in the table at ``path``,
    read without pandas (the workflow's planning asks for pool sizes)."""
    try:
        with gzip.open(path, "rb") as fh:
            lines = fh.read().decode("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(
            f"cannot read WordNet lemma table {path}: {exc}. Regenerate it with: {_REGENERATE}"
        ) from exc
    if lines[0] != "\t".join(COLUMNS):
        raise CorpusError(f"{path}: header {lines[0]!r}, expected the columns {list(COLUMNS)}")
    counts = Counter(line.partition("\t")[2] for line in lines[1:] if line)
    out = []
    for key, n in counts.items():
        pos, lexnames, also = key.split("\t")
        out.append((pos, lexnames, also == "True", n))
    return tuple(out)


def candidate_pool_sizes(
    *,
    exclude_lexnames: Iterable[str] = (),
    drop_adjectives_that_are_nouns: bool = True,
    path: str | Path | None = None,
) -> dict[str, int]:
    """``{'noun': n, 'adj': m}``: the lemmas of the table that NegMining's step 1 keeps before
    the ID class names are removed (:func:`candidate_rule`); the pool the mined negatives are
    drawn from is smaller by the class names found among them. Pandas-free, so the config check
    can compare ``mining.n_negatives`` with it before any job."""
    p = Path(path) if path is not None else corpus_path()
    excluded = frozenset(exclude_lexnames)
    sizes = {"noun": 0, "adj": 0}
    for pos, lexnames, also, n in _row_kinds(str(p.resolve())):
        kept = candidate_rule(
            pos,
            lexnames,
            also,
            exclude_lexnames=excluded,
            drop_adjectives_that_are_nouns=drop_adjectives_that_are_nouns,
        )
        if kept is None and pos in sizes:
            sizes[pos] += n
    return sizes


def check_corpus(path: str | Path | None = None) -> dict[str, int]:
    """Verify the lemma table loads and looks like WordNet 3.0; return ``{'noun': n, 'adj': m}``.

    Raises :class:`CorpusError` with the reason and the command that regenerates the table when
    the file is missing or unreadable, has other columns or part-of-speech labels, holds empty
    or duplicate lemmas, has fewer than 80,000 nouns or 15,000 adjectives, lacks the noun 'dog'
    (with noun.animal among its lexnames), or when the licence file beside it is missing.
    """
    p = Path(path) if path is not None else corpus_path()
    table = load_corpus(p)

    def fail(reason: str) -> CorpusError:
        return CorpusError(
            f"WordNet lemma table {p} is not usable: {reason}. Regenerate it with: {_REGENERATE}"
        )

    bad_pos = sorted(set(table["pos"]) - {"noun", "adj"})
    if bad_pos:
        raise fail(f"unexpected pos values {bad_pos} (valid: 'noun', 'adj')")
    if (table["lemma"].str.strip() == "").any():
        raise fail("it contains empty lemmas")
    keys = table["pos"] + "\t" + table["lemma"].str.casefold()
    if keys.duplicated().any():
        dup = table.loc[keys.duplicated(), ["lemma", "pos"]].iloc[0].tolist()
        raise fail(f"duplicate lemma {dup[0]!r} ({dup[1]})")
    counts = {pos: int((table["pos"] == pos).sum()) for pos in ("noun", "adj")}
    if counts["noun"] < _MIN_NOUNS or counts["adj"] < _MIN_ADJS:
        raise fail(
            f"only {counts['noun']} nouns and {counts['adj']} adjectives "
            f"(WordNet 3.0 has >= {_MIN_NOUNS} and >= {_MIN_ADJS})"
        )
    dog = table[(table["lemma"] == "dog") & (table["pos"] == "noun")]
    if dog.empty or "noun.animal" not in dog["lexnames"].iloc[0].split(LEXNAME_SEPARATOR):
        raise fail("the noun 'dog' (noun.animal) is missing")
    if not (p.parent / "LICENSE").is_file():
        raise fail(f"the WordNet licence file {p.parent / 'LICENSE'} is missing")
    return counts


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ants.wordnet", description="Build or check the shipped WordNet lemma table."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build lemmas.tsv.gz from a WordNet 3.0 dict directory")
    build.add_argument(
        "--from", dest="source", required=True, help="WordNet dict dir (e.g. /usr/share/wordnet)"
    )
    build.add_argument("--out", required=True, help="output directory (e.g. ants/data/wordnet/)")
    check = sub.add_parser("check", help="verify the shipped (or a given) table")
    check.add_argument("--path", default=None, help="table to check (default: the shipped one)")
    args = parser.parse_args(argv)
    if args.command == "build":
        table = build_lemma_table(args.source)
        out = write_lemma_table(table, args.out)
        counts = table["pos"].value_counts()
        print(
            f"wrote {out}: {counts.get('noun', 0)} nouns, {counts.get('adj', 0)} adjectives, "
            f"{out.stat().st_size} bytes"
        )
    else:
        counts = check_corpus(args.path)
        print(f"WordNet corpus OK: {counts['noun']} nouns, {counts['adj']} adjectives")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
