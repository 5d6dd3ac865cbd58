"""Every command shown to a reader runs as written (issue 15, item 1).

The commands are read from README.md and docs/*.md (``bash`` blocks, and inline code that starts
with a program: prose and tables, a table's ``... --configfile X`` meaning the row above's
command with that config) and from the comments of the files a reader opens first (the
configs' headers, params.yaml, dvc.yaml, the Snakefile and rule files, the profiles, the
Makefile: a comment line ``#   <command>   explanation``, and inline code).

Each distinct command is run in a fresh copy of the repository (every tracked and not ignored
file, as a clone has them, in a git repository of its own) after a small demo run there (the
session's shared run of ``_workflow.test_params``, tests/_demo_run.py, copied in, recorded by
DVC and committed) and with data laid out where the configs look
(tests/_datasets.py): as written when it is cheap, with a dry-run flag added when it would do
real work (``snakemake ... -n``, ``dvc exp run --dry``, ``make -n``, ``pip install --dry-run
--no-index``). It must exit 0 and leave ``git status`` as it was, but for the files it is shown
to write. The few that cannot run here are in ``NOT_RUN``, each with the reason; a command that
is neither run nor listed there fails ``test_every_documented_command_is_run_or_named``.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from _datasets import make_fixture_data
from _demo_run import copy_demo_run
from _repo import repo_files
from _workflow import NOTHING
from _workflow import env as workflow_env

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

#: a documented command starts with one of these (or a path such as .venv/bin/python)
PROGRAMS = {
    "snakemake", "dvc", "ants", "make", "pip", "python", "python3", "git", "vllm", "sbatch", "srun",
    "squeue", "sinfo", "sacct", "sacctmgr", "scancel", "tail", "cp", "mv", "rm", "cd", "export",
    "source", ".", "bash", "sh", "curl", "wget", "docker", "conda", "uv", "transformers",
    "huggingface-cli", "hf", "tmux", "screen", "nvidia-smi", "pytest", "ruff", "mkdir", "ln", "cat",
}  # fmt: skip

#: Shown, but not run here: each with the reason (and where it is tested instead). A shown
#: command that is neither run by this test nor listed here fails; so does a stale entry.
NOT_RUN = {
    # -- cannot run on a CPU test machine
    "vllm serve llava-hf/llava-1.5-7b-hf --host 127.0.0.1 --port 8000 --served-model-name "
    "llava-hf/llava-1.5-7b-hf --max-model-len 4096 --limit-mm-per-prompt '{\"image\": 1}' "
    "--generation-config vllm": "needs vLLM and a GPU with LLaVA-1.5-7B's weights; the openai "
    "backend is tested against `transformers serve` (tests/e2e/test_transformers_serve.py)",
    "vllm serve llava-hf/llava-1.5-7b-hf": "the same server, named in a comment of params.yaml",
    "python -m ants.wordnet build --from /usr/share/wordnet --out ants/data/wordnet/": "needs "
    "Debian's wordnet package in /usr/share/wordnet; tests/unit/test_wordnet.py builds the tables from "
    "WordNet files through the same CLI",
    "python benchmarks/gpu_check.py --device cuda": "needs a CUDA GPU (`make gpu-check`, whose "
    "Makefile target is dry-run here); tests/integration/test_gpu_check.py runs its every path with --small",
    "python benchmarks/gpu_check.py --small": "run by tests/integration/test_gpu_check.py (a minute of tiny "
    "models on the CPU)",
    "sinfo -s": "SLURM's own command (needs a cluster; tests/e2e/test_slurm.py sets one up)",
    "sacctmgr show assoc user=$USER format=account": "SLURM's accounting command (needs a cluster "
    "with an accounting database)",
    "sacctmgr show assoc user=$USER": "the same SLURM command, in the profile's comment",
    # -- a remote or another machine
    "dvc push && git push": "pushes to a remote; tests/e2e/test_dvc_remote.py pushes to and pulls from "
    "a local-folder DVC remote",
    "git clone <repo> && cd <repo> && dvc pull": "a clone of your repository elsewhere; "
    "tests/e2e/test_dvc_remote.py does the clone and pull",
    "dvc pull": "pulls from a remote (tests/e2e/test_dvc_remote.py)",
    # -- patterns and names, not command lines
    "tail -f results/logs/...": "a pattern (any job's log); follows it until interrupted",
    "dvc exp run -S": "names DVC's option (docs/ARCHITECTURE.md); the option is run with a value",
    "dvc exp run -S key=value": "a pattern; `dvc exp run -S methods.adaneg.config.lam=0.2` is run",
    "ants ...": "a pattern: the rules' commands",
    "ants negatives compare A B": "a pattern (docs/METHOD.md); README's `ants negatives compare` "
    "of the demo's NegMining and CSP negatives is run",
    "python tools/fault_table.py --write": "rewrites README's fault table in place; "
    "tests/unit/test_fault_table.py checks README equals what the tool renders",
    "ants ablation-table": "names the paper rule's command (docs/METHOD.md; its arguments are the "
    "rule's): tests/e2e/test_workflow_paper.py runs it through `snakemake paper`",
    "ants cost-table": "names the paper rule's command, as `ants ablation-table`",
    "snakemake paper --configfile ...": "a pattern (the configs' headers); `snakemake paper` is "
    "run, and every config's paper DAG is dry-run by tests/integration/test_configs.py",
    "transformers serve": "names transformers' server (tests/e2e/test_transformers_serve.py runs it)",
    "sbatch --gpus=N": "names the sbatch option the SLURM plugin passes",
    "python -m ants.wordnet build": "names the command shown in full in README.md",
}

#: Files a command is shown to write (``git status --porcelain`` lines it may leave).
WRITES = {
    "ants answers export --stream demo/ants_code --out answers.csv": {"?? answers.csv"},
    "dvc remote add -d storage /path/to/dvc-store": {" M .dvc/config"},
    "ants config merge params.yaml configs/mos4.yaml --out params.yaml && dvc exp run": {
        " M params.yaml"
    },
}

#: What a command's output must say (beyond exit status 0).
SAYS = {
    "snakemake -n": NOTHING,
    "ants config check params.yaml": "params.yaml: valid",
    "ants config check params.yaml configs/mos4.yaml": "valid",
    "dvc repro": "didn't change, skipping",
}


@dataclass(frozen=True)
class Shown:
    """One command line as a reader sees it, and where."""

    text: str
    where: str


def strip_comment(line: str) -> str:
    """``line`` without a trailing shell comment (a ``#`` that starts a word outside quotes)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


#: ``NAME=value`` before a command: an environment variable set for it
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=\S*$")


def is_command(text: str) -> bool:
    """Whether ``text`` starts like a command line (a known program, or a path to one, after
    any ``NAME=value`` assignments)."""
    words = text.split()
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    if not words:
        return False
    if words[0] == ".":  # `. .venv/bin/activate`, not a list of punctuation
        return len(words) == 2 and "/" in words[1]
    return words[0] in PROGRAMS or bool(re.match(r"^(\./|\.\./|\.?venv/)", words[0]))


def _continue(previous: str | None, text: str) -> str:
    """``... --configfile X`` after ``snakemake ... --configfile Y``: the previous command with
    its tail from the first option of ``text`` replaced."""
    rest = text[4:]
    if previous is None or rest.split()[0] not in previous:
        raise ValueError(f"{text!r}: no command above it to continue")
    return previous[: previous.rindex(rest.split()[0])] + rest


def markdown_commands(path: Path) -> list[Shown]:
    """Each line of the ``bash`` blocks (continuation lines joined, comments dropped) and each
    inline code span of two or more words that starts like a command."""
    found: list[Shown] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    name = str(path.relative_to(ROOT))
    block, pending, start = None, "", 0
    prose: list[str] = []
    for n, line in enumerate(lines, start=1):
        if line.lstrip().startswith("```"):
            block = None if block is not None else (line.lstrip()[3:].strip() or "text")
            prose.append("")
            continue
        if block is None:
            prose.append(line)
            continue
        prose.append("")
        if block not in ("bash", "sh", "shell", "console"):
            continue
        if not pending:
            start = n
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        text = " ".join(strip_comment(pending).split())
        pending = ""
        if text:
            found.append(Shown(text, f"{name}:{start}"))
    text = "\n".join(prose)
    previous = None
    for m in re.finditer(r"`([^`]+)`", text):
        span = " ".join(m[1].split())
        where = f"{name}:{text.count(chr(10), 0, m.start()) + 1}"
        if span.startswith("... ") and len(span.split()) > 1 and span.split()[1].startswith("-"):
            span = _continue(previous, span)
        elif not is_command(span) or len(span.split()) < 2:
            continue
        found.append(Shown(span, where))
        previous = span
    return found


#: files whose comments show commands: `#   <command>   explanation` lines and inline code
COMMENTED = (
    "configs/*.yaml",
    "params.yaml",
    "dvc.yaml",
    "Snakefile",
    "workflow/rules/*.smk",
    "profiles/*/config.yaml",
    "Makefile",
)


def comment_commands(path: Path) -> list[Shown]:
    """``#   <command>   explanation`` comment lines, and inline code spans in comments."""
    found: list[Shown] = []
    name = str(path.relative_to(ROOT))
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = re.match(r"^\s*#\s{2,}(\S.*)$", line)
        if m:
            text = re.split(r"\s{2,}", m[1].strip())[0]  # an explanation follows 2+ spaces
            if is_command(text):
                found.append(Shown(text, f"{name}:{n}"))
        if "#" in line and not path.suffix == ".smk":  # the rule files name their rules' commands
            for span in re.findall(r"`([^`]+)`", line[line.index("#") :]):
                if is_command(span) and len(span.split()) > 1:
                    found.append(Shown(" ".join(span.split()), f"{name}:{n}"))
    return found


def documented_commands() -> list[Shown]:
    shown = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        shown += markdown_commands(path)
    for pattern in COMMENTED:
        for path in sorted(ROOT.glob(pattern)):
            shown += comment_commands(path)
    return shown


def simple_commands(text: str) -> list[list[str] | str]:
    """``text`` as argument lists and the operators between them (``&&``, ``;``)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    parts: list[list[str] | str] = [[]]
    for token in lexer:
        if token in ("&&", ";", "||", "|"):
            parts += [token, []]
        else:
            parts[-1].append(token)
    return parts


def plan(text: str) -> str | None:
    """The shell line that runs ``text`` here (a dry-run flag added where it would do real
    work), or None when no rule covers one of its commands."""
    out = []
    for part in simple_commands(text):
        if isinstance(part, str):
            out.append(part)
            continue
        n = next((i for i, w in enumerate(part) if not ASSIGNMENT.match(w)), len(part))
        assignments, argv = part[:n], part[n:]
        prog, sub = argv[0], argv[1:3]
        if prog == "snakemake":
            if not {"-n", "--dry-run", "--dryrun", "--unlock"} & set(argv):
                argv = [*argv, "-n"]
        elif prog == "dvc" and sub[:2] == ["exp", "run"]:
            argv = [*argv[:3], "--dry", *argv[3:]]
        elif prog == "dvc" and (
            sub[0] in ("repro", "metrics", "params", "plots")
            or sub == ["exp", "show"]
            or sub == ["remote", "add"]
        ):
            pass
        elif prog == "ants" or (prog == "." and argv[1:] == [".venv/bin/activate"]):
            pass
        elif prog == "git" and sub[:1] == ["checkout"] and "--" in argv:
            pass  # restores tracked files: a no-op in a clean copy
        elif prog == "make":
            argv = ["make", "-n", *argv[1:]]
        elif prog == "pip" and sub[:1] == ["install"]:
            argv = ["pip", "install", "--dry-run", "--no-index", "--no-build-isolation", *argv[2:]]
        else:
            return None
        out.append(shlex.join([*assignments, *argv]))
    return " ".join(out)


SHOWN = documented_commands()
#: distinct commands, in the order a reader meets them
DISTINCT = list(dict.fromkeys(s.text for s in SHOWN))
TO_RUN = [t for t in DISTINCT if t not in NOT_RUN]


def test_every_documented_command_is_run_or_named():
    unplanned = [
        f"{s.where}: {s.text}" for s in SHOWN if s.text not in NOT_RUN and plan(s.text) is None
    ]
    assert not unplanned, (
        "commands shown but neither run by this test nor in NOT_RUN:\n" + "\n".join(unplanned)
    )
    stale = set(NOT_RUN) - set(DISTINCT)
    assert not stale, f"NOT_RUN names commands no longer shown: {sorted(stale)}"
    assert set(WRITES) <= set(TO_RUN) and set(SAYS) <= set(TO_RUN)


def test_the_extraction_sees_every_kind_of_source():
    where = {s.where.split(":")[0] for s in SHOWN}
    assert {
        "README.md",
        "docs/CLUSTER.md",
        "configs/mos4.yaml",
        "configs/custom.yaml",
        "params.yaml",
        "dvc.yaml",
        "Snakefile",
        "profiles/slurm/config.yaml",
        "Makefile",
    } <= where
    # the table rows `... --configfile X` are the row above's command with that config
    for name in ("mos4", "mos4_qwen2vl", "openood_v15", "finegrained", "custom"):
        assert (
            f"snakemake --cores 8 all --resources gpu=1 mllm_jobs=1 --configfile configs/{name}.yaml"
            in [s.text for s in SHOWN if s.where.startswith("README.md")]
        ), name
    assert len(TO_RUN) > 40
    # a new command nobody accounted for is caught; the dry-run rules are what they say
    assert (
        plan("sbatch job.sh") is None
        and plan("dvc push") is None
        and plan("rm -rf results") is None
    )
    assert plan("snakemake --cores 8 all --configfile configs/mos4.yaml") == (
        "snakemake --cores 8 all --configfile configs/mos4.yaml -n"
    )
    assert plan("ants config merge a.yaml --out b.yaml && dvc exp run") == (
        "ants config merge a.yaml --out b.yaml && dvc exp run --dry"
    )
    assert (
        strip_comment("vllm serve x --limit '{\"a\": 1}'  # note")
        == "vllm serve x --limit '{\"a\": 1}'"
    )


# ------------------------------------------------------------------------------------------
# running them


def _env(project: Path) -> dict:
    """test_workflow's environment (this venv's bin first, offline, a git identity), with the
    copy's package importable: the commands run the copy's code."""
    return {**workflow_env(), "PYTHONPATH": str(project)}


def _sh(line: str, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", line],
        cwd=cwd,
        env=_env(cwd),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _ok(line: str, cwd: Path, timeout: int = 900) -> str:
    proc = _sh(line, cwd, timeout)
    assert proc.returncode == 0, (
        f"{line} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A fresh copy of the repository (what a clone holds) in a git repository of its own, with
    the configs' data laid out (as fixtures) where the configs look."""
    dest = tmp_path_factory.mktemp("fresh") / "ants"
    for path in repo_files():
        rel = path.relative_to(ROOT)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest / rel)
    (dest / ".venv").symlink_to(
        Path(sys.prefix), target_is_directory=True
    )  # `. .venv/bin/activate`
    _ok(
        "git init -q -b main && echo /.venv >> .git/info/exclude && git add -A && git commit -qm clone",
        dest,
    )
    make_fixture_data(dest / "data")
    return dest


@pytest.fixture(scope="module")
def after_demo(fresh, demo_run) -> Path:
    """``fresh`` after a small demo run recorded by DVC and committed, and one commit more (so
    ``HEAD~1`` names the run). The run is the session's shared one, copied in (its params, its
    results and reports, Snakemake's records, every file's mtime): Snakemake finds it finished."""
    copy_demo_run(demo_run, fresh, only=("params.yaml", "results", "reports", ".snakemake"))
    assert NOTHING in _ok("snakemake -n all", fresh)
    # README's `ants negatives compare` reads the CSP negatives, which `snakemake paper` mines for
    # the initial-detector panel: that one job of it (the rest of `paper` is
    # tests/e2e/test_workflow_paper.py's)
    _ok("snakemake --cores 2 results/negatives/tiny/demo/csp.parquet", fresh)
    _ok(
        "dvc repro -q && git add -A && git commit -qm run && git commit -q --allow-empty -m later",
        fresh,
    )
    assert _sh("git status --porcelain", fresh).stdout == ""
    return fresh


def needs_results(text: str) -> bool:
    """Whether a command reads what a run leaves (results, dvc.lock, the git history)."""
    return text.startswith(
        ("dvc ", "ants answers", "ants negatives", "ants metrics", "ants cache")
    ) or (
        text == "snakemake -n"  # "Nothing to be done" after a run
    )


@pytest.mark.slow
@pytest.mark.parametrize("text", TO_RUN, ids=[f"{i:02d} {t}" for i, t in enumerate(TO_RUN)])
def test_documented_command_runs(text, request):
    project = request.getfixturevalue("after_demo" if needs_results(text) else "fresh")
    line = plan(text)
    proc = _sh(line, project)
    out = proc.stdout + proc.stderr
    status = set(_sh("git status --porcelain", project).stdout.splitlines())
    _ok(
        "git checkout -q -- . && git clean -fdq", project
    )  # the next command starts from the same state
    where = ", ".join(s.where for s in SHOWN if s.text == text)
    assert proc.returncode == 0, f"{where}: `{text}` (run as `{line}`) failed:\n{out[-4000:]}"
    assert "Traceback" not in out, out[-4000:]
    assert status == WRITES.get(text, set()), f"{where}: `{text}` left {sorted(status)}"
    if text in SAYS:
        assert SAYS[text] in out, out[-3000:]


#: README's call for reading experiments (issue 15, item 4): it must fit a 160-column terminal
EXP_SHOW = "dvc exp show --only-changed --drop Created"
#: the keys results/metrics.json holds per method: the far/near averages' AUROC and FPR95
HEADLINE = ("far.auroc", "far.fpr95", "near.auroc", "near.fpr95")


@pytest.mark.slow
def test_one_method_change_reads_in_a_terminal(after_demo, tmp_path):
    """After `dvc exp run -S` of one AdaNeg param on the demo, the documented `dvc exp show`
    prints lines of at most 160 characters, and `dvc metrics diff` lists AdaNeg's headline
    numbers and nothing else."""
    assert EXP_SHOW in DISTINCT and "README.md" in {
        s.where.split(":")[0] for s in SHOWN if s.text == EXP_SHOW
    }
    w = tmp_path / "ants"
    shutil.copytree(after_demo, w, symlinks=True)
    metrics = json.loads((w / "results/metrics.json").read_text())
    assert {m: sorted(f"{s}.{k}" for s in v for k in v[s]) for m, v in metrics["demo"].items()} == {
        m: list(HEADLINE) for m in metrics["demo"]
    }
    _ok("dvc exp run -q -S methods.adaneg.config.lam=0.2", w, timeout=3600)
    # a terminal as wide as the table wants (DVC cuts columns to fit a narrower one)
    shown = _ok(f"COLUMNS=1000 {EXP_SHOW}", w)
    assert "methods.adaneg.config.lam" in shown and "demo.adaneg.far.auroc" in shown, shown
    widths = [len(line) for line in shown.splitlines()]
    assert max(widths) <= 160, f"{max(widths)} characters wide:\n{shown}"
    proc = _sh("dvc metrics diff --json", w)
    assert proc.returncode == 0, proc.stderr
    diff = json.loads(proc.stdout)["results/metrics.json"]
    assert diff and set(diff) <= {f"demo.adaneg.{k}" for k in HEADLINE}, sorted(diff)
    table = _ok("dvc metrics diff", w).splitlines()
    assert len(table) == 1 + len(diff), table  # a head and one row per changed number
