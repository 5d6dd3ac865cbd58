"""params.yaml is laid out the way DVC rewrites it, so `dvc exp run -S key=value` changes
exactly the line of that key (issue 15, item 3).

DVC 3 applies ``-S`` overrides with ``dvc.utils.hydra.apply_overrides``: it loads params.yaml
with ruamel.yaml's round-trip loader, merges the overridden whole back into it (every list is
replaced by a plain one, so it is dumped as a block list and loses its comments; a null in a
block mapping is dumped as an empty value) and dumps it with ruamel.yaml (lines wrapped at 80
columns). The tests run that very function on a copy of the shipped file, for a no-op and for
a change of every scalar; one test runs a real ``dvc exp run -S`` in a throwaway repository.
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
DVC = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))

hydra = pytest.importorskip("dvc.utils.hydra", reason="needs dvc (the workflow extra)")


def dvc_set(path: Path, *overrides: str) -> None:
    """What ``dvc exp run -S override`` does to params.yaml (DVC's own function)."""
    hydra.apply_overrides(str(path), list(overrides))


def scalar_leaves(node, prefix=()):
    """``(path, value)`` of every scalar of a mapping tree (not inside lists)."""
    for key, value in node.items():
        if isinstance(value, dict):
            yield from scalar_leaves(value, (*prefix, key))
        elif not isinstance(value, list):
            yield (*prefix, key), value


def new_value(value, i: int) -> tuple[str, object]:
    """A different value of the same kind: (Hydra override text, the value it loads as)."""
    if isinstance(value, bool):
        return str(not value).lower(), not value
    if isinstance(value, int):
        return str(value + 7), value + 7
    if isinstance(value, float):
        return repr(value + 0.125), value + 0.125
    return f"changed_{i}", f"changed_{i}"  # strings and nulls


def value_spans(text: str) -> dict[tuple, range]:
    """``{path: line numbers}`` (0-based) of every scalar of the YAML text: its key's line and
    the continuation lines of a folded string."""
    from ruamel.yaml import YAML

    lines = text.splitlines()

    def indent(s: str) -> int:
        return len(s) - len(s.lstrip())

    def walk(node, prefix):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from walk(value, (*prefix, key))
            elif not isinstance(value, list):
                line = end = node.lc.key(key)[0]
                end += 1
                while (
                    end < len(lines)
                    and lines[end].strip()
                    and not lines[end].lstrip().startswith("#")
                    and indent(lines[end]) > indent(lines[line])
                ):
                    end += 1
                yield (*prefix, key), range(line, end)

    return dict(walk(YAML().load(text), ()))


def test_params_yaml_is_what_dvc_writes_back(tmp_path):
    """Setting a key to its current value rewrites the file byte for byte."""
    copy = tmp_path / "params.yaml"
    shutil.copy(PARAMS, copy)
    dvc_set(copy, f"stream.batch_size={yaml.safe_load(PARAMS.read_text())['stream']['batch_size']}")
    diff = list(
        difflib.unified_diff(
            PARAMS.read_text().splitlines(),
            copy.read_text().splitlines(),
            "params.yaml",
            "after dvc -S",
            lineterm="",
        )
    )
    assert not diff, "DVC rewrites params.yaml:\n" + "\n".join(diff[:80])


def test_changing_every_scalar_through_dvc_changes_only_their_lines(tmp_path):
    """Every scalar of the file set to a new value in one ``-S`` run: each change replaces the
    lines of that value and nothing else (no comment, blank line or other value moves); a
    one-line value is replaced by one line. (One run for all keys: DVC's rewrite takes half a
    second per call; a value's lines depend on that value alone.)"""
    text = PARAMS.read_text()
    params = yaml.safe_load(text)
    leaves = list(scalar_leaves(params))
    assert len(leaves) > 150  # the whole file, not a sample
    expected = yaml.safe_load(text)
    overrides = []
    for i, (path, value) in enumerate(leaves):
        override, loaded = new_value(value, i)
        overrides.append(f"{'.'.join(path)}={override}")
        node = expected
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = loaded
    copy = tmp_path / "params.yaml"
    copy.write_text(text)
    dvc_set(copy, *overrides)
    after = copy.read_text()
    assert yaml.safe_load(after) == expected

    old, new = text.splitlines(), after.splitlines()
    spans, new_spans = value_spans(text), value_spans(after)
    assert set(spans) == set(new_spans) == {path for path, _ in leaves}
    # everything but the values (comments, blank lines, keys of mappings and lists) is kept
    rest = [line for i, line in enumerate(old) if not any(i in s for s in spans.values())]
    new_rest = [line for i, line in enumerate(new) if not any(i in s for s in new_spans.values())]
    assert rest == new_rest, "\n".join(difflib.unified_diff(rest, new_rest, lineterm=""))
    # ... in the same places: the values are where they were, in the same order
    order = sorted(spans, key=lambda p: spans[p][0])
    assert order == sorted(new_spans, key=lambda p: new_spans[p][0])
    bad = []
    for path in order:
        before_lines, after_lines = [old[i] for i in spans[path]], [new[i] for i in new_spans[path]]
        key = before_lines[0].split(":", 1)[0] + ":"
        comment = before_lines[0].partition("  #")[2]
        alias = before_lines[0].rstrip().endswith("*openood")
        if not after_lines[0].startswith(key) or not after_lines[0].endswith(comment):
            bad.append(f"{'.'.join(path)}: {before_lines[0]!r} -> {after_lines[0]!r}")
        elif len(before_lines) == 1 and not alias and len(after_lines) != 1:
            bad.append(f"{'.'.join(path)}: one line became {after_lines}")
        elif before_lines == after_lines:
            bad.append(f"{'.'.join(path)}: unchanged")
    assert not bad, "\n".join(bad)


def test_only_the_folded_strings_span_several_lines():
    """Every other scalar is one line, so its change is a one-line diff."""
    text = PARAMS.read_text()
    multi = {".".join(p) for p, span in value_spans(text).items() if len(span) > 1}
    assert multi == {
        "datasets.imagenet_val.instructions",
        "datasets.inaturalist.url",
        "datasets.textures.checksum",
        "datasets.openood_imagenet_test.instructions",
        "sweeps.ens_words.default",
    }


def test_the_layout_check_sees_a_flow_list_and_a_null(tmp_path):
    """The DVC rewrite is what the tests above guard against: a flow list, ``null`` and a
    comment after a list are rewritten even when nothing changes."""
    copy = tmp_path / "params.yaml"
    before = "a:\n  xs: [1, 2]\n  root: null\n  n: 3\n"
    copy.write_text(before)
    dvc_set(copy, "a.n=3")
    assert copy.read_text() == "a:\n  xs:\n  - 1\n  - 2\n  root:\n  n: 3\n"


def _git(*args, cwd):
    env = {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.org",
    }
    proc = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, f"{' '.join(map(str, args))}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.skipif(
    not Path(DVC).exists() or shutil.which("git") is None, reason="needs git and dvc"
)
def test_dvc_exp_run_set_param_changes_exactly_that_line(tmp_path):
    """A real ``dvc exp run -S`` (a one-second stage that tracks every key of params.yaml, as
    dvc.yaml's workflow stage does) of a nested scalar, a list item and a string."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(PARAMS, repo / "params.yaml")
    (repo / "dvc.yaml").write_text(
        "stages:\n  echo:\n    cmd: python -c \"print('ok')\" > out.txt\n"
        "    params:\n      - params.yaml:\n    outs:\n      - out.txt:\n          cache: false\n"
    )
    (repo / ".gitignore").write_text("out.txt\n")
    _git("git", "init", "-q", "-b", "main", cwd=repo)
    _git(DVC, "init", "-q", cwd=repo)
    _git("git", "add", "-A", cwd=repo)
    _git("git", "commit", "-q", "-m", "params", cwd=repo)
    text = PARAMS.read_text()
    lines, params, spans = text.splitlines(), yaml.safe_load(text), value_spans(text)
    lam = lines[spans["methods", "adaneg", "config", "lam"][0]]
    title = lines[spans["report", "title"][0]]
    seeds = params["run"]["seeds"]
    assert lines[-1] == f"  - {seeds[-1]}"  # run.seeds is the file's last list
    new_seeds = ",".join(map(str, [*seeds[:-1], seeds[-1] + 3]))
    for override, old, new in [
        (
            "methods.adaneg.config.lam=0.625",
            lam,
            lam.replace(f"lam: {params['methods']['adaneg']['config']['lam']}", "lam: 0.625"),
        ),
        (f"run.seeds=[{new_seeds}]", lines[-1], f"  - {seeds[-1] + 3}"),
        ("report.title=My study", title, "  title: My study"),
    ]:
        assert old != new
        _git(DVC, "exp", "run", "-q", "-S", override, cwd=repo)
        after = (repo / "params.yaml").read_text().splitlines()
        changed = [(a, b) for a, b in zip(lines, after, strict=True) if a != b]
        assert changed == [(old, new)], (override, changed)
        _git("git", "checkout", "-q", "--", "params.yaml", cwd=repo)
