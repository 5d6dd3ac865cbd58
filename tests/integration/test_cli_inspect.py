"""The inspection commands on fixture artifacts: answers list/show/export/diff/streams, negatives,
metrics (--brief), cache stats/rebuild; errors name what exists; the README examples run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from _report_fixtures import XSS_SCRIPT, shared_run

from ants import cli_inspect
from ants.answers_log import read_logs
from ants.cli import main
from ants.inspection import banks_at, diff_logs, filter_answers

STREAM = "fixture/ants_code/fx_far/seed0"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return shared_run(tmp_path_factory)


@pytest.fixture
def at_root(run, monkeypatch):
    monkeypatch.chdir(run["root"])
    return run


def ants(capsys, *argv):
    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_streams_counts_queries_per_kind_and_status(at_root, capsys):
    rc, out, _ = ants(capsys, "answers", "streams")
    assert rc == 0
    frame = read_logs("results/answers")
    assert len(set(frame["stream_id"])) == 8
    for sid in frame["stream_id"].unique():
        assert sid in out
    n_ok = int(((frame["stream_id"] == STREAM) & (frame["kind"] == "ens") & (frame["status"] == "ok")).sum())
    line = next(x for x in out.splitlines() if x.startswith(STREAM))
    assert str(n_ok) in line.split()


def test_list_filters_by_status_kind_and_text(at_root, capsys):
    rc, out, _ = ants(capsys, "answers", "list", "--status", "empty", "--limit", "1000")
    assert rc == 0
    lines = [x for x in out.splitlines() if x.strip()][1:]  # under the header
    frame = read_logs("results/answers")
    assert len(lines) == int((frame["status"] == "empty").sum()) > 0
    assert all(" empty " in x for x in lines)
    rc, out, _ = ants(capsys, "answers", "list", "--text", "BICYCLE", "--kind", "ens", "--limit", "1000")
    assert rc == 0 and out.count("bicycle") == int(frame["raw_text"].str.contains("bicycle").sum())


def test_show_prints_prompt_answer_negatives_and_cache_origin(at_root, capsys):
    frame = filter_answers(read_logs("results/answers"), stream=STREAM, kind="ens")
    b = int(frame["batch_index"].iloc[0])
    rc, out, _ = ants(capsys, "answers", "show", "--stream", STREAM, "--batch", str(b), "--kind", "ens", "--limit", "50")
    assert rc == 0
    assert "asked:     Describe" in out and "negatives: [" in out
    assert "from cache" in out and "generated" in out  # from the JSON sidecar
    assert XSS_SCRIPT in out or "a blue kite" in out


def test_show_and_diff_cut_a_huge_answer_as_max_answer_chars_says(at_root, capsys, tmp_path, monkeypatch):
    logs = tmp_path / "answers"
    shutil.copytree("results/answers", logs)
    path = sorted(logs.rglob("*.parquet"))[0]
    frame = pd.read_parquet(path)
    frame.loc[frame.index[0], "raw_text"] = "y" * 100_000
    frame.to_parquet(path)
    row = frame.iloc[0]
    where = ["--log", str(logs), "--stream", row["stream_id"], "--batch", str(row["batch_index"]), "--kind", row["kind"]]
    rc, out, _ = ants(capsys, "answers", "show", *where, "--max-chars", "500")
    assert rc == 0 and "... [100,000 characters]" in out and "y" * 501 not in out and "y" * 400 in out
    rc, out, _ = ants(capsys, "answers", "show", *where, "--max-chars", "0")
    assert rc == 0 and "y" * 100_000 in out
    original = Path("results/answers").resolve()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "params.yaml").write_text("mllm: {max_answer_chars: 300}\n")
    monkeypatch.chdir(elsewhere)  # a run folder whose params.yaml sets the limit: the default
    rc, out, _ = ants(capsys, "answers", "show", *where)
    assert rc == 0 and "y" * 301 not in out and "... [100,000 characters]" in out
    rc, out, _ = ants(capsys, "answers", "diff", str(original), str(logs))
    assert rc == 0 and "answers changed: 1" in out and "y" * 301 not in out and "y" * 200 in out
    rc, _, err = ants(capsys, "answers", "show", *where, "--max-chars", "-1")
    assert rc == 2 and "--max-chars: expected a whole number >= 0" in err


def test_unknown_stream_and_batch_name_what_exists(at_root, capsys):
    rc, _, err = ants(capsys, "answers", "show", "--stream", "fixture/nope/seed0")
    assert rc == 2 and "no stream 'fixture/nope/seed0' in the answers log; streams: fixture/ants_code/fx_far/seed0" in err
    frame = filter_answers(read_logs("results/answers"), stream=STREAM, kind="ens")
    batches = sorted(int(x) for x in frame["batch_index"].unique())
    rc, _, err = ants(capsys, "answers", "show", "--stream", STREAM, "--batch", "999", "--kind", "ens")
    assert rc == 2
    assert err.strip().endswith(f"has no ens queries at batch 999; batches with queries: {', '.join(map(str, batches))}")
    rc, _, err = ants(capsys, "negatives", "--stream", STREAM, "--batch", "99")
    assert rc == 2 and "has batches 1..10; got --batch 99" in err


def test_export_csv_and_json_round_trip(at_root, capsys, tmp_path):
    want = filter_answers(read_logs("results/answers"), stream="fixture/ants_paper", kind="vsnl")
    rc, out, _ = ants(capsys, "answers", "export", "--stream", "fixture/ants_paper", "--kind", "vsnl",
                      "--out", str(tmp_path / "a.csv"))
    assert rc == 0 and f"{len(want)} queries" in out
    got = pd.read_csv(tmp_path / "a.csv")
    assert [json.loads(x) for x in got["negatives"]] == [list(v) for v in want["negatives"]]
    rc, _, _ = ants(capsys, "answers", "export", "--stream", "fixture/ants_paper", "--kind", "vsnl",
                    "--out", str(tmp_path / "a.json"))
    recs = json.loads((tmp_path / "a.json").read_text())
    assert [r["raw_text"] for r in recs] == want["raw_text"].tolist()
    assert [r["negatives"] for r in recs] == [list(v) for v in want["negatives"]]


def test_one_corrupt_log_does_not_hide_the_other_streams(at_root, capsys, tmp_path):
    """A damaged answers log among several: every other stream is listed, then one stderr
    line names the damaged file, and the exit status is 1 (a listing with a gap is loud)."""
    logs = tmp_path / "answers"
    shutil.copytree("results/answers", logs)
    files = sorted(logs.rglob("*.parquet"))
    bad = files[0]
    bad_stream = read_logs(bad)["stream_id"].iloc[0]
    bad.write_bytes(bad.read_bytes()[: len(bad.read_bytes()) // 2])  # a half-written copy
    frame = read_logs("results/answers")
    others = frame[frame["stream_id"] != bad_stream]
    rc, out, err = ants(capsys, "answers", "list", "--log", str(logs), "--limit", "0")
    assert rc == 1
    lines = [x for x in out.splitlines() if x.strip()][1:]  # under the header
    assert len(lines) == len(others) and {x.split()[0] for x in lines} == set(others["stream_id"])
    (line,) = err.strip().splitlines()
    assert line.startswith(f"ants answers: skipped an unreadable log: {bad} (answers log): not a Parquet file, "
                           "or cut short (no Parquet footer). Rebuild it: ")
    rc, out, err = ants(capsys, "answers", "streams", "--log", str(logs))
    assert rc == 1 and bad_stream not in out and set(others["stream_id"]) <= set(out.split())
    assert str(bad) in err
    # asking for the damaged stream says that its log could not be read
    rc, _, err = ants(capsys, "answers", "list", "--log", str(logs), "--stream", bad_stream)
    assert rc == 2 and f"no stream {bad_stream!r}" in err and f"unreadable: {bad} (answers log): " in err
    # every log damaged: one clear line, exit 2
    for f in files:
        f.write_bytes(b"not parquet")
    rc, _, err = ants(capsys, "answers", "list", "--log", str(logs))
    assert rc == 2 and f"(and {len(files) - 1} more logs like it)" in err


@pytest.mark.parametrize("argv", [["answers", "list"], ["answers", "show"], ["answers", "diff", "a", "b"],
                                  ["negatives", "--stream", STREAM, "--batch", "1"]])
def test_limit_must_be_a_whole_number_from_zero(at_root, capsys, argv):
    for bad in ("-1", "x"):
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--limit", bad])
        assert exc.value.code == 2
        assert f"argument --limit: expected a whole number >= 0 (0 = all), got '{bad}'" in capsys.readouterr().err


def test_limit_zero_lists_every_query(at_root, capsys):
    n = len(read_logs("results/answers"))
    assert n > 3
    rc, out, _ = ants(capsys, "answers", "list", "--limit", "0")
    assert rc == 0 and len(out.strip().splitlines()) == 1 + n and "more (use --limit)" not in out
    rc, out, _ = ants(capsys, "answers", "list", "--limit", "3")
    assert rc == 0 and out.strip().splitlines()[-1] == f"... {n - 3} more (use --limit)"


def test_banks_at_every_batch_match_the_state_machine(run):
    """The reconstruction equals the real run's bank sizes at every batch and its final banks."""
    from _report_fixtures import CLASSES

    from ants.artifacts import read_scores as read_table

    frame = read_logs(run["results"] / "answers")
    for (b, m, ood, seed), path in run["score_files"].items():
        if m == "mcm":
            continue
        sid = f"{b}/{m}/{ood}/seed{seed}"
        sf, meta = read_table(path)
        rows = frame[frame["stream_id"] == sid]
        t = run["finals"][sid]
        for i, batch in enumerate(t.batch):
            banks = banks_at(rows, int(batch), config=meta["method"]["config"], preds=sf["pred"].tolist(),
                             pred_batches=sf["batch"].tolist(), class_names=CLASSES)
            assert (len(banks.ens), len(banks.vsnl)) == (t.ens_size[i], t.vsnl_size[i]), (sid, batch)
        assert banks.ens == t.ens_sentences
        assert banks.vsnl == t.vsnl_labels


#: ENS answers whose sentences the two normalisations tell apart ("peak.." : lenient keeps one dot,
#: the authors' style none), duplicates across cases and an empty answer
BANK_ENS_ANSWERS = ["A snowy mountain peak.. .", "A red kite over the sea", "", "Blue sky..", "a snowy mountain peak"]


@pytest.mark.parametrize("preset", ["paper", "authors_code"])
def test_banks_at_equal_the_detectors_banks_at_every_batch(preset):
    """banks_at reconstructs, from a stream's answers log, the banks the detector holds after every
    batch, for both presets: each answer parsed with the preset's parser (as the answer job does), the
    detector replaying the log (as the score job does) over the stream's first b batches (its state at
    batch b: the state machine reads nothing after the current batch)."""
    import hashlib
    import itertools

    import numpy as np
    from _report_fixtures import CLASSES, D, _unit

    from ants.answers_log import answer_map, answer_records
    from ants.methods.ants_tta import ants_config, run_ants
    from ants.mllm.parsing import parse_answer
    from ants.replay import ReplayAnswerer

    rng = np.random.default_rng(7)
    k, n_id, n_ood, bs = len(CLASSES), 40, 24, 8
    idt = _unit(rng.normal(size=(k, D)))
    neg = _unit(rng.normal(size=(40, D)))
    labels = np.arange(n_id) % k
    feats = np.concatenate([_unit(rng.normal(size=(n_ood, D))), _unit(idt[labels] * 3 + rng.normal(size=(n_id, D)))])
    order = rng.permutation(n_id + n_ood)
    feats, items = feats[order], [f"img{i}.png" for i in order]
    config = {"preset": preset, "ens_max_updates": 3, "ens_trigger_size": 5, "vsnl_start": 1, "vsnl_interval": 2,
              "group_size": 10, "near_top_k": 2, "near_delta": 0.34}
    style = ants_config(config).answer_parser
    count = itertools.count()

    def mllm(queries):
        raws = [BANK_ENS_ANSWERS[next(count) % len(BANK_ENS_ANSWERS)] if q.kind == "ens"
                else f"1. {q.class_name}-like thing.. .\n2. Snow leopard\n3. snow leopard.." for q in queries]
        return [parse_answer(q.kind, raw, q.class_name, style=style) for q, raw in zip(queries, raws, strict=True)]

    def encode(texts, template):
        h = [[int(hashlib.sha256(f"{template}|{t}|{j}".encode()).hexdigest()[:6], 16) / 2**24 - 0.5 for j in range(D)]
             for t in texts]
        return _unit(np.asarray(h) + 1e-3)

    asked = []

    def answerer(queries):
        answers = mllm(queries)
        asked.extend(zip(queries, answers, strict=True))
        return answers

    common = {"items": items, "id_text_features": idt, "negative_features": neg, "class_names": CLASSES,
              "encode_text": encode, "config": config, "batch_size": bs}
    full = run_ants(image_features=feats, answerer=answerer, **common)
    t = full.trace
    assert t.ens_update.sum() >= 2 and t.vsnl_update.sum() >= 2
    log = answer_records([q for q, _ in asked], [a for _, a in asked], stream_id="s",
                         batch_index=[b for b, _ in t.queries])
    replay = ReplayAnswerer(answer_map(log))
    pred_batches = np.arange(len(items)) // bs + 1
    for b in t.batch:
        n = min(len(items), int(b) * bs)
        upto = run_ants(image_features=feats[:n], answerer=replay, **{**common, "items": items[:n]}).trace
        banks = banks_at(log, int(b), config=config, preds=full.predictions, pred_batches=pred_batches,
                         class_names=CLASSES)
        assert banks.ens == upto.ens_sentences, (preset, int(b))
        assert banks.vsnl == upto.vsnl_labels, (preset, int(b))
        assert banks.vsnl_exact
    # the answer the two styles clean apart is in the banks as the preset's parser cleaned it
    want = parse_answer("ens", BANK_ENS_ANSWERS[0], "cat", style=style).negatives[0]
    assert want.startswith("A snowy mountain peak") and want in t.ens_sentences
    assert "Snow leopard" in t.vsnl_labels


def test_negatives_command_prints_the_banks_and_agrees_with_the_trace(at_root, capsys):
    t = at_root["finals"][STREAM]
    rc, out, _ = ants(capsys, "negatives", "--stream", STREAM, "--batch", "10", "--limit", "100")
    assert rc == 0
    assert f"bank of {len(t.ens_sentences)} sentences" in out
    for s in t.ens_sentences:
        assert f"    - {s}" in out
    assert "MISMATCH" not in out and "the score file's trace at batch 10" in out


def _tweaked_copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
    log = dst / "fixture" / "ants_code" / "fx_far" / "seed0.parquet"
    f = pd.read_parquet(log)
    i = f.index[(f["kind"] == "vsnl") & (f["status"] == "ok")][0]
    f.loc[i, "raw_text"] = "1. zebra\n2. okapi"
    f.at[i, "negatives"] = ["zebra", "okapi"]
    f = f.drop(index=f.index[f["kind"] == "ens"][0])
    f.to_parquet(log)


def test_diff_names_changed_answers_dropped_queries_and_bank_changes(at_root, capsys, tmp_path):
    _tweaked_copy(Path("results/answers"), tmp_path / "b")
    a, b = read_logs("results/answers"), read_logs(tmp_path / "b")
    d = diff_logs(a, b)
    assert len(d["changed"]) == 1 and len(d["only_a"]) == 1 and len(d["only_b"]) == 0
    assert d["entered"][(STREAM, "vsnl")] == ["zebra", "okapi"]
    rc, out, _ = ants(capsys, "answers", "diff", "results/answers", str(tmp_path / "b"), "--exit-code")
    assert rc == 1
    assert "answers changed: 1" in out and "only in A: 1" in out
    assert f"VSNL negatives entered (in B, not in A) {STREAM}: ['zebra', 'okapi']" in out
    rc, out, _ = ants(capsys, "answers", "diff", "results/answers", "results/answers", "--exit-code")
    assert rc == 0 and "only in A: 0; only in B: 0; answers changed: 0" in out


def test_diff_of_a_missing_revision_is_one_clear_line(at_root, capsys):
    rc, _, err = ants(capsys, "answers", "diff", "results/answers", "nosuchrev:results/answers/x.parquet")
    assert rc == 2 and "neither git nor dvc could fetch 'results/answers/x.parquet' at revision 'nosuchrev'" in err


def test_metrics_table_and_brief(at_root, capsys):
    name = cli_inspect.METRICS_COMMAND
    rc, out, _ = ants(capsys, name)
    assert rc == 0
    main_csv = pd.read_csv("results/metrics/fixture.csv")
    r = main_csv[(main_csv["method"] == "mcm") & (main_csv["dataset"] == "fx_far")].iloc[0]
    assert f"{r['auroc']:.2f} ± {r['auroc_std']:.2f}" in out
    assert "FPR95-ID: ID-positive" in out and "NOTE: offline demo" in out
    rc, out, _ = ants(capsys, name, "--brief")
    assert rc == 0
    lines = out.splitlines()
    assert any(x.startswith("fixture") and "ANTS (paper) [preset paper]" in x and
               f"AUROC {main_csv[(main_csv['method'] == 'ants_paper') & (main_csv['dataset'] == 'fx_near')]['auroc'].iloc[0]:.2f}"
               in x for x in lines)
    assert "report: reports/index.html (not built yet: snakemake report)" in out
    # the MLLM answers by status, and each stream with a bad answer, as the log counts them
    frame = read_logs("results/answers")
    by = frame["status"].value_counts()
    assert (f"MLLM answers: {len(frame)} queries in {frame['stream_id'].nunique()} streams: {by.get('ok', 0)} ok, "
            f"{by.get('empty', 0)} empty, {by.get('unparsable', 0)} unparsable, {by.get('failed', 0)} failed") in out
    for sid, g in frame[frame["status"] != "ok"].groupby("stream_id"):
        n = g["status"].value_counts()
        assert (f"  {sid}: {n.get('failed', 0)} failed, {n.get('unparsable', 0)} unparsable, {n.get('empty', 0)} "
                f"empty of {int((frame['stream_id'] == sid).sum())}") in out
    rc, _, err = ants(capsys, name, "--benchmark", "mos9")
    assert rc == 2 and "benchmark 'mos9' is not run; benchmarks: fixture" in err


def test_metrics_brief_describes_the_run_it_is_given(at_root, capsys):
    """What the workflow passes (the merged config's view, the run's answers logs) is what the
    summary shows, not ./params.yaml's benchmarks or every log under results/answers."""
    from ants.views import tables_view

    view = tables_view(cli_inspect._load_params("params.yaml"))
    view["run"]["methods"] = ["mcm", "ants_code"]
    one = sorted(Path("results/answers").rglob("*.parquet"))[0]
    rc, out, _ = ants(capsys, "metrics", "--brief", "--view-json", json.dumps(view), "--answers", str(one))
    assert rc == 0
    rows = [x.split()[:2] for x in out.splitlines() if x.startswith("fixture ")]
    assert rows == [["fixture", "MCM"], ["fixture", "ANTS"]]
    assert f"MLLM answers: {len(read_logs(one))} queries in 1 streams: " in out
    assert "NOTE: offline demo" not in out  # the view says nothing of the models: --demo does
    rc, out, _ = ants(capsys, "metrics", "--brief", "--view-json", json.dumps(view), "--answers", "--demo")
    assert rc == 0 and "MLLM answers" not in out and "NOTE: offline demo" in out
    rc, out, _ = ants(capsys, "metrics", "--brief", "--view-json", json.dumps(view), "--answers", str(one),
                      "results/answers/fixture/none/x/seed9.parquet")
    assert "MLLM answers: 1 answers log(s) missing, e.g. results/answers/fixture/none/x/seed9.parquet" in out


def test_cache_rebuild_then_stats(at_root, capsys, tmp_path):
    cache = tmp_path / "c.sqlite"
    frame = read_logs("results/answers")
    want = frame[frame["status"] != "failed"]["cache_key"].nunique()
    rc, out, _ = ants(capsys, "cache", "rebuild", "--cache", str(cache))
    assert rc == 0 and f"{want} answers added" in out
    rc, out, _ = ants(capsys, "cache", "rebuild", "--cache", str(cache))
    assert "0 answers added" in out and f"({want} already cached" in out
    rc, out, _ = ants(capsys, "cache", "stats", "--cache", str(cache))
    assert rc == 0 and f"{want} cached answers" in out
    rc, _, err = ants(capsys, "cache", "stats", "--cache", str(tmp_path / "none.sqlite"))
    assert rc == 2 and "answer cache not found" in err


@pytest.mark.parametrize("argv", [["answers", "list"], ["answers", "show"], ["answers", "export"], ["answers", "diff"],
                                  ["answers", "streams"], ["negatives"], ["cache", "stats"], ["cache", "rebuild"],
                                  ["tables"], [None]])
def test_every_command_has_help(argv, capsys):
    argv = [cli_inspect.METRICS_COMMAND if a is None else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    assert "usage: ants" in capsys.readouterr().out


README_STREAM = re.compile(r"\bdemo/ants_code(?:/demo_far/seed0)?")


def test_readme_inspection_examples_run(at_root, capsys):
    """Every `ants answers` / `ants negatives` line of the README runs (on the fixture's stream)."""
    readme = Path(__file__).resolve().parents[2] / "README.md"
    lines = [x.split("#")[0].strip() for x in readme.read_text().splitlines()]
    cmds = [x for x in lines if x.startswith(("ants answers", "ants negatives"))]
    if not cmds:
        pytest.skip("the README shows no inspection command")
    for cmd in cmds:
        argv = README_STREAM.sub(lambda m: STREAM if m.group(0).endswith("seed0") else "fixture/ants_code",
                                 cmd).split()[1:]
        if "diff" in argv:
            continue
        if argv[:2] == ["negatives", "compare"]:  # the demo's negative sets -> the fixture's
            argv = [a.replace("/demo", "/fixture") for a in argv]
            for a in argv[2:]:
                if not Path(a).exists():  # the CSP-mined bank: the fixture's mined one stands in
                    Path(a).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy("results/negatives/tiny/fixture.parquet", a)
        rc, _, err = ants(capsys, *argv)
        assert rc == 0, f"README example {cmd!r} fails: {err}"


def test_logs_read_in_both_layouts_with_the_timing_sidecar_only_when_it_matches(run, tmp_path):
    from ants.answers_log import read_answer_log as read_one_log
    from ants.answers_log import sidecar_path

    log = run["logs"][0]
    side = sidecar_path(log)
    assert side == run["results"] / "logs" / "answer" / log.relative_to(run["results"] / "answers").with_suffix(
        ".timing.json")
    frame = read_one_log(log)
    assert frame["from_cache"].tolist() == [bool(i % 2) for i in range(len(frame))]
    # the old layout: one log per benchmark directly under results/answers, no sidecar
    old = tmp_path / "results" / "answers"
    old.mkdir(parents=True)
    shutil.copy(log, old / "demo.parquet")
    f = read_logs(old)
    assert len(f) == len(frame) and f["from_cache"].isna().all()
    # a sidecar written for another version of the log is ignored
    new = tmp_path / "results" / "answers" / "fixture" / "m" / "o" / "seed0.parquet"
    new.parent.mkdir(parents=True)
    pd.read_parquet(log).iloc[::-1].to_parquet(new)
    shutil.copy(side, Path(str(new) + ".timing.json"))
    assert read_one_log(new)["from_cache"].isna().all()


def test_diff_of_a_revision_whose_dvc_files_are_not_in_the_cache_says_how_to_get_them(run, tmp_path, capsys,
                                                                                      monkeypatch):
    """README's `ants answers diff HEAD~1:results/answers results/answers` on a fresh clone: the old
    answers are a DVC out whose files are not in the local cache. Before: DVC's generic "Having any
    troubles?" line. Now: what is missing and how to fetch it (a real git + dvc repository)."""
    import subprocess
    import sys

    dvc = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@e.org", "DVC_NO_ANALYTICS": "1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)

    def sh(*cmd):
        subprocess.run(cmd, cwd=tmp_path, check=True, capture_output=True, text=True, timeout=300)

    sh("git", "init", "-q")
    sh(dvc, "init", "-q")
    shutil.copytree(Path(run["root"]) / "results/answers", tmp_path / "results/answers")
    sh(dvc, "add", "-q", "results/answers")
    sh("git", "add", "-A")
    sh("git", "commit", "-qm", "answers")
    shutil.rmtree(tmp_path / ".dvc/cache")  # as in a fresh clone without `dvc pull`
    monkeypatch.chdir(tmp_path)
    rc, _, err = ants(capsys, "answers", "diff", "HEAD:results/answers", "results/answers")
    assert rc == 2
    (line,) = err.strip().splitlines()
    assert line == (
        "ants answers: error: HEAD:results/answers: 'results/answers' at revision 'HEAD' is tracked by DVC, but "
        "its files are not in this clone's DVC cache (.dvc/cache; a fresh clone has none): fetch them from the "
        "project's DVC remote (`dvc remote list`) with `dvc fetch --all-commits`, or `dvc pull` in a checkout "
        "of that revision; or compare two folders you have")


def test_list_has_a_header_and_names_each_query_s_image(at_root, capsys):
    """Issue 15 item 9: `ants answers list` had no header and no image column."""
    frame = read_logs("results/answers")
    rc, out, _ = ants(capsys, "answers", "list", "--limit", "0")
    assert rc == 0
    header, *lines = out.splitlines()
    assert header.split() == ["stream", "batch", "kind", "status", "class", "image", "answer"]
    assert len(lines) == len(frame)
    for line, r in zip(lines, frame.itertuples(), strict=True):
        image = Path(r.image).name[-24:] if isinstance(r.image, str) and r.image else "-"
        assert line.split()[:4] == [r.stream_id, f"b{r.batch_index}", r.kind, r.status]
        assert f" {image} " in line
    # the columns line up under the header
    assert {line.index(" b") for line in lines} == {header.index(" batch")}
    assert (frame["kind"] == "ens").any() and any(Path(x).name in out for x in frame["image"].dropna())


@pytest.mark.parametrize(("out", "fmt", "message"), [
    ("a.xlsx", None, "cannot tell the format from '.xlsx'; give a .csv or .json file (or --format csv|json)"),
    ("a", None, "cannot tell the format from 'no suffix'"),
    ("a.xlsx", "csv", "a .xlsx file would hold CSV; name it .csv"),
    ("a.json", "csv", "a .json file would hold CSV; name it .csv"),
])
def test_export_refuses_a_file_name_that_says_another_format(at_root, capsys, tmp_path, out, fmt, message):
    """Issue 15 item 9: `--out x.xlsx` wrote CSV into a .xlsx file silently."""
    argv = ["answers", "export", "--out", str(tmp_path / out)] + (["--format", fmt] if fmt else [])
    rc, _, err = ants(capsys, *argv)
    assert rc == 2 and message in err and not (tmp_path / out).exists()
    assert list(tmp_path.iterdir()) == []  # nothing left behind, not even a temporary file


def test_brief_summary_columns_line_up_for_the_widest_label(at_root, capsys):
    """Issue 15 item 9: the widest row label (the authors' split-selected row) broke the column."""
    rc, out, _ = ants(capsys, "metrics", "--brief")
    rows = [x for x in out.splitlines() if x.startswith("fixture ")]
    labels = [x.split("  ")[0] for x in rows]
    assert len(rows) >= 3 and any("far_only on far / near_only on near" in x for x in rows), rows
    # the first figure starts in the same column on every line, past the widest label
    starts = set()
    for x in rows:
        first = x.index(": AUROC")  # after the first dataset's name
        starts.add(first - len(x[:first].split()[-1]))
    assert len(starts) == 1 and min(starts) > max(map(len, labels)), rows
