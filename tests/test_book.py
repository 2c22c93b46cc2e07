"""The batch runner and the notebook runtime: validation before any write, atomic publication, provenance."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import needs_git, patch_runner
from mfbook import chapter, numerics, run_book

REPO = Path(__file__).resolve().parents[1]


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("args, named", [
    (["--profile", "nonsense"], "nonsense"),
    (["--profile", "smoke", "--device", "tpu"], "tpu"),
    (["--profile", "smoke", "--seed", "-3"], "-3"),
    (["--profile", "smoke", "--seed", "abc"], "abc"),
    (["--profile", "smoke", "--only", "99_missing"], "99_missing"),
])
def test_bad_parameters_exit_non_zero_naming_the_value_and_leave_results_untouched(args, named):
    results = REPO / "results"
    before = tree_digest(results) if results.exists() else ""
    proc = subprocess.run([sys.executable, "-m", "mfbook.run_book", "execute", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert named in proc.stderr and "valid" in proc.stderr
    assert (tree_digest(results) if results.exists() else "") == before


NOTEBOOK_OK = '''# %% [markdown]
# # A tiny chapter
# %% tags=["parameters"]
profile = "smoke"
device = "auto"
seed = 0
out_dir = ""
# %%
import pandas as pd
from mfbook import chapter
ch = chapter.open_chapter("01_tiny", profile=profile, device=device, seed=seed, out_dir=out_dir)
ch.save_table(pd.DataFrame({"x": [1, 2], "y": [0.5, 1 / 3]}), "numbers")
ch.finish()
'''


@pytest.fixture()
def sandbox(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    patch_runner(monkeypatch, "NOTEBOOK_DIR", tmp_path / "notebooks")
    patch_runner(monkeypatch, "RESULTS_DIR", tmp_path / "results")
    patch_runner(monkeypatch, "FAILED_DIR", tmp_path / "failed")
    return tmp_path


def test_a_notebook_runs_into_its_results_folder_with_provenance(sandbox):
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    out = sandbox / "results" / "smoke" / "01_tiny"
    assert (out / "01_tiny.ipynb").exists()
    assert pd.read_csv(out / "numbers.csv")["x"].tolist() == [1, 2]
    prov = json.loads((out / "provenance.json").read_text())
    for key in ("git_sha", "git_dirty", "profile", "parameters", "parameters_hash", "seed", "device_name", "python",
                "torch", "cuda", "started_at", "ended_at", "wall_seconds"):
        assert key in prov
    assert prov["profile"] == "smoke" and prov["seed"] == 0
    assert not list((sandbox / "results" / "smoke").glob(".staging-*"))


def test_a_failing_notebook_leaves_the_previous_results_in_place(sandbox):
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    out = sandbox / "results" / "smoke" / "01_tiny"
    before = tree_digest(out)
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK.replace("ch.finish()", "raise RuntimeError('boom')"))
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    assert exit_info.value.code != 0
    assert tree_digest(out) == before
    assert not list((sandbox / "results" / "smoke").glob(".staging-*"))


def test_keep_going_runs_the_chapters_after_a_failed_one_and_still_exits_nonzero(sandbox, capsys):
    (sandbox / "notebooks" / "01_bad.py").write_text(NOTEBOOK_OK.replace("ch.finish()", "raise RuntimeError('boom')"))
    (sandbox / "notebooks" / "02_good.py").write_text(NOTEBOOK_OK)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--keep-going"])
    assert exit_info.value.code == 1
    assert not (sandbox / "results" / "smoke" / "01_bad").exists()
    assert (sandbox / "failed" / "smoke" / "01_bad.ipynb").exists()  # where it stopped, for the reader
    assert (sandbox / "results" / "smoke" / "02_good" / "provenance.json").exists()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["failed"] == ["01_bad"] and list(summary["wall_seconds"]) == ["02_good"]


def test_a_chapter_that_raises_is_reported_in_one_line_with_its_exception(sandbox, capsys):
    # chapter 7 stops on a damaged table with claims.UnreadableTable: the runner shows that message, not the cell's
    # traceback (which stays in the partly executed notebook under _build/failed/)
    bad = sandbox / "results" / "smoke" / "04_few_shot_curves" / "jdr_frames.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text("rig,method\na,b\na,b,c,d\n")
    (sandbox / "notebooks" / "07_card.py").write_text(NOTEBOOK_OK.replace(
        "ch.finish()", f"from mfcore import claims\nclaims.scorecard({str(bad.parents[1])!r})\nch.finish()"))
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: 07_card failed at")]
    assert len(lines) == 1 and "Traceback" not in err and "----" not in err, err
    assert f"UnreadableTable: {bad} is not a readable table" in lines[0]
    assert "execute chapter 04_few_shot_curves again" in lines[0]
    assert (sandbox / "failed" / "smoke" / "07_card.ipynb").exists()


def test_a_notebook_that_never_finishes_its_chapter_is_a_failure(sandbox):
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK.replace("ch.finish()", "pass"))
    with pytest.raises(SystemExit):
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    assert not (sandbox / "results" / "smoke" / "01_tiny").exists()


def test_open_chapter_validates_and_writes_byte_stable_figures(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ch = chapter.open_chapter("01_x", profile="smoke", device="cpu", seed=3, out_dir=str(tmp_path))
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    a = ch.save_figure(fig, "line").read_bytes()
    b = ch.save_figure(fig, "line").read_bytes()
    assert a == b and b"Software" not in a
    with pytest.raises(ValueError, match="'nope'"):
        chapter.open_chapter("01_x", profile="nope", device="cpu", out_dir=str(tmp_path))
    with pytest.raises(ValueError, match="seed"):
        chapter.open_chapter("01_x", profile="smoke", device="cpu", seed=-1, out_dir=str(tmp_path))


def test_every_notebook_source_has_a_parameters_cell_and_no_outputs():
    stems = run_book.notebook_stems()
    assert stems and stems[0] == "01_fusion_geometry"
    for stem in stems:
        text = (REPO / "notebooks" / f"{stem}.py").read_text()
        assert '# %% tags=["parameters"]' in text, stem
        for name in ("profile", "device", "seed", "out_dir"):
            assert f"\n{name} = " in text, (stem, name)
        assert "chapter.open_chapter(" in text and "ch.finish()" in text, stem


def test_a_shipped_tree_names_its_source_commit_in_provenance(monkeypatch):
    monkeypatch.setenv("MFCORE_SOURCE_SHA", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("MFCORE_SOURCE_DIRTY", "1")
    assert chapter.git_state() == {"git_sha": "0123456789abcdef0123456789abcdef01234567", "git_dirty": True}


@needs_git
def test_a_checkout_names_its_own_commit_in_provenance(monkeypatch):
    monkeypatch.delenv("MFCORE_SOURCE_SHA", raising=False)
    assert len(chapter.git_state()["git_sha"]) == 40


def test_batch_runs_use_text_progress_bars_and_leave_the_environment_as_it_was(sandbox, monkeypatch):
    monkeypatch.delenv("MFCORE_TEXT_PROGRESS", raising=False)
    nb = NOTEBOOK_OK.replace('ch.save_table(pd.DataFrame({"x": [1, 2], "y": [0.5, 1 / 3]}), "numbers")',
                             'from mfbook import progress\n'
                             'bar = progress.tqdm(range(3))\n'
                             'ch.save_table(pd.DataFrame({"text_only": [progress.text_only()], '
                             '"bar": [type(bar).__module__]}), "numbers")')
    (sandbox / "notebooks" / "01_tiny.py").write_text(nb)
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    got = pd.read_csv(sandbox / "results" / "smoke" / "01_tiny" / "numbers.csv")
    assert got.text_only.tolist() == [True] and got.bar.tolist() == ["mfbook.progress"]  # a tqdm.std text bar
    import os
    assert "MFCORE_TEXT_PROGRESS" not in os.environ


def test_a_text_bar_prints_its_postfix_at_the_next_timed_refresh_only(monkeypatch):
    import io

    import tqdm.std

    from mfbook import progress

    monkeypatch.setenv("MFCORE_TEXT_PROGRESS", "1")
    out = io.StringIO()
    bar = progress.tqdm(range(100), file=out, mininterval=3600, desc="steps")
    assert isinstance(bar, tqdm.std.tqdm)
    for i in bar:
        bar.set_postfix(loss=i)
    lines = [line for line in out.getvalue().replace("\r", "\n").splitlines() if line.strip()]
    assert len(lines) == 2  # the first state and the final one, not a line per loss
    assert lines[-1].startswith("steps: 100%") and "loss=99" in lines[-1]


def test_the_gpu_runner_script_names_a_bad_option_and_the_valid_ones():
    proc = subprocess.run(["bash", str(REPO / "tools" / "gpu_book.sh"), "--nope"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "'--nope'" in proc.stderr and "--only" in proc.stderr and "--wheels" in proc.stderr


def test_set_seed_switches_deterministic_kernels_and_leaves_torch_alone_when_off():
    import os

    code = ("import sys, torch; from mfbook import chapter; chapter.set_seed(0, 'cuda'); "
            "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules); "
            "chapter.set_seed(0, 'cpu'); print(torch.are_deterministic_algorithms_enabled()); "
            "chapter.set_seed(0, 'cuda'); print(torch.are_deterministic_algorithms_enabled())")
    env = {k: v for k, v in os.environ.items() if k != "MFCORE_DETERMINISTIC"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                         cwd=Path(__file__).resolve().parents[1]).stdout.split()
    # off on a GPU (no 1.5-2 s import of torch._inductor), on for the CPU, off again after it
    assert out == ["False", "False", "True", "False"]


# --- executing chapters at once -------------------------------------------------------------------------------------

FULL_SECONDS = {"01_fusion_geometry": 36.4, "02_synthetic_studio": 19.4, "03_meta_training": 198.3,
                "04_few_shot_curves": 242.4, "05_rpsm_3d": 180.8, "06_trainable_fusion": 136.1,
                "07_scorecard": 13.8, "08_your_cameras": 43.5, "09_epipolar_oracle": 144.1,
                "10_metafuse_decided": 507.3, "11_backbone_seed": 144.8}
# papermill durations of the full runs on one H100 at 8cd667f (01, 02, 06: at 35d5ce6, their code unchanged since;
# 04 beside 08; 05, 07, 11 two at a time; 03, 09, 10 alone)


def test_chapter_needs_name_earlier_chapters_and_the_scorecard_waits_for_every_table_it_reads():
    from mfcore import claims

    stems = run_book.notebook_stems()
    assert set(FULL_SECONDS) == set(stems)
    for stem, needs in run_book.CHAPTER_NEEDS.items():
        assert stem in stems
        for need in needs:
            assert need in stems and stems.index(need) < stems.index(stem), (stem, need)
    read = {c.evidence.split("/")[0] for c in claims.CLAIMS}
    assert read <= set(run_book.CHAPTER_NEEDS["07_scorecard"])
    assert set(run_book.TIMED_CHAPTERS) <= set(stems)


@pytest.mark.parametrize("stem, marker", [
    ("04_few_shot_curves", "fewshot."), ("05_rpsm_3d", "warmup_backbone"), ("06_trainable_fusion", "trainable_fusion"),
    ("08_your_cameras", "pretrained_fusion"),
])
def test_chapters_that_use_chapter_3s_models_wait_for_it(stem, marker):
    assert marker in (REPO / "notebooks" / f"{stem}.py").read_text()
    needs, todo = set(), [stem]
    while todo:  # chapter 3, directly or through another chapter
        for need in run_book.CHAPTER_NEEDS.get(todo.pop(), ()):
            needs.add(need)
            todo.append(need)
    assert "03_meta_training" in needs


def test_the_schedule_runs_the_timed_chapters_alone_and_the_rest_after_them_three_at_a_time():
    stems = run_book.notebook_stems()
    waves = run_book.schedule(stems, 3, FULL_SECONDS)
    assert waves[0] == ["03_meta_training"]  # timed: alone
    assert len(waves[1]) == 3 and {"04_few_shot_curves", "06_trainable_fusion"} <= set(waves[1])  # longest paths first
    assert all(len(w) <= 3 for w in waves)
    start = {s: i for i, w in enumerate(waves) for s in w}
    assert all(start["07_scorecard"] > start[need] for need in run_book.CHAPTER_NEEDS["07_scorecard"])
    assert "07_scorecard" in run_book.schedule(stems, 3, FULL_SECONDS, ())[-1]  # the CPU's schedule: it goes last
    assert sorted(s for w in waves for s in w) == stems
    # one at a time: reading order where the needs allow it, the same chapters
    assert [s for w in run_book.schedule(stems, 1, FULL_SECONDS) for s in w][:2] == ["03_meta_training",
                                                                                      "04_few_shot_curves"]


def test_a_timed_chapter_never_starts_beside_another_and_nothing_starts_beside_it():
    stems, prio = run_book.notebook_stems(), {s: 0.0 for s in run_book.notebook_stems()}
    prio["03_meta_training"] = 10.0
    # 01 runs: 03 (the most urgent) waits, and nothing overtakes it
    assert run_book.next_chapters(["02_synthetic_studio", "03_meta_training"], ["01_fusion_geometry"], set(), stems, 3,
                                  prio) == []
    assert run_book.next_chapters(["01_fusion_geometry", "02_synthetic_studio"], ["03_meta_training"], set(), stems, 3,
                                  prio) == []
    assert run_book.next_chapters(["01_fusion_geometry", "03_meta_training"], [], set(), stems, 3, prio) == [
        "03_meta_training"]


def test_the_chapters_kept_apart_are_known_chapters_and_kept_apart_on_a_gpu_only():
    stems = run_book.notebook_stems()
    assert run_book.CHAPTERS_APART  # 09 and 10 ran out of memory together on an 80 GB H100
    for a, b in run_book.CHAPTERS_APART:
        assert a in stems and b in stems and a != b, (a, b)
        assert (REPO / "notebooks" / f"{a}.py").is_file() and (REPO / "notebooks" / f"{b}.py").is_file()
    assert run_book.apart_on("cuda") == run_book.CHAPTERS_APART
    assert run_book.apart_on("cpu") == ()
    assert run_book.chapters_apart("09_epipolar_oracle") == {"10_metafuse_decided"}
    assert run_book.chapters_apart("10_metafuse_decided") == {"09_epipolar_oracle"}
    assert run_book.chapters_apart("10_metafuse_decided", ()) == set()


APART = (("09_epipolar_oracle", "10_metafuse_decided"),)


def test_chapters_kept_apart_never_start_together_and_the_next_ready_chapter_goes_instead():
    stems, finished = run_book.notebook_stems(), {"03_meta_training", "04_few_shot_curves"}
    prio = {s: 0.0 for s in stems} | {"10_metafuse_decided": 3.0, "09_epipolar_oracle": 2.0, "05_rpsm_3d": 1.0}
    pending = ["05_rpsm_3d", "09_epipolar_oracle", "10_metafuse_decided"]
    # without the rule the two most urgent start together; with it 09 waits and 05 goes beside 10
    assert run_book.next_chapters(pending, [], finished, stems, 2, prio, ()) == ["10_metafuse_decided",
                                                                                  "09_epipolar_oracle"]
    assert run_book.next_chapters(pending, [], finished, stems, 2, prio, APART) == ["10_metafuse_decided",
                                                                                     "05_rpsm_3d"]
    # 10 running: 09 does not start, though a slot is free
    assert run_book.next_chapters(["09_epipolar_oracle"], ["10_metafuse_decided"], finished, stems, 3, prio,
                                  APART) == []
    assert run_book.next_chapters(["10_metafuse_decided"], ["09_epipolar_oracle"], finished, stems, 3, prio,
                                  APART) == []


def test_a_schedule_runs_chapters_kept_apart_one_after_the_other_without_deadlock():
    selected = ["09_epipolar_oracle", "10_metafuse_decided"]  # the only two: one starts, the other once it is done
    assert run_book.schedule(selected, 2, {s: 10.0 for s in selected}, ()) == [selected]
    assert run_book.schedule(selected, 2, {s: 10.0 for s in selected}, APART) == [["09_epipolar_oracle"],
                                                                                  ["10_metafuse_decided"]]
    # the whole book on a GPU (the default): 09 and 10 never run at the same time, every chapter runs once
    stems = run_book.notebook_stems()
    waves = run_book.schedule(stems, 4, FULL_SECONDS)
    assert sorted(s for w in waves for s in w) == stems
    start = {s: i for i, w in enumerate(waves) for s in w}
    assert start["09_epipolar_oracle"] != start["10_metafuse_decided"]
    seconds = dict(FULL_SECONDS, **{"09_epipolar_oracle": 150.0, "10_metafuse_decided": 150.0})
    spans, clock, running, pending, finished = {}, 0.0, {}, list(stems), set()
    prio = run_book.critical_path_seconds(stems, seconds)
    while pending or running:  # the same clock as schedule(), recording each chapter's span
        for s in run_book.next_chapters(pending, list(running), finished, stems, 4, prio):
            pending.remove(s)
            running[s] = clock + seconds[s]
            spans[s] = (clock, running[s])
        clock = min(running.values())
        for s in [s for s, t in running.items() if t == clock]:
            del running[s]
            finished.add(s)
    assert "10_metafuse_decided" not in run_book.chapters_beside("09_epipolar_oracle", spans)


@pytest.mark.parametrize("jobs", ["0", "-2", "many"])
def test_a_bad_jobs_value_is_named(jobs, sandbox, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--jobs", jobs])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert repr(jobs) in err and "valid" in err
    assert not (sandbox / "results").exists()


SLEEPY = NOTEBOOK_OK.replace("ch.finish()", "import time\ntime.sleep(2)\nch.finish()")


def test_chapters_execute_at_once_after_what_they_need_and_the_run_is_recorded(sandbox, monkeypatch):
    for stem in ("01_a", "02_b", "03_c"):
        (sandbox / "notebooks" / f"{stem}.py").write_text(SLEEPY.replace("01_tiny", stem))
    patch_runner(monkeypatch, "CHAPTER_NEEDS", {"03_c": ("01_a",)})
    patch_runner(monkeypatch, "TIMED_CHAPTERS", ())
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--jobs", "2"])
    record = json.loads((sandbox / "results" / "smoke" / "book_run.json").read_text())
    span = {s: (c["start_s"], c["end_s"]) for s, c in record["chapters"].items()}
    assert record["jobs"] == 2 and set(span) == {"01_a", "02_b", "03_c"}
    assert span["01_a"][0] < span["02_b"][1] and span["02_b"][0] < span["01_a"][1]  # 01 and 02 at once
    assert span["03_c"][0] >= span["01_a"][1]  # 03 after what it needs
    assert record["wall_seconds"] < sum(c["seconds"] for c in record["chapters"].values())
    for stem in span:
        assert (sandbox / "results" / "smoke" / stem / "provenance.json").exists()



# --- faults: the full profile without a GPU, two runs at once, failures, SIGTERM, unwritable folders ------------------

def test_the_full_profile_without_a_gpu_is_refused_up_front_unless_the_cpu_is_asked_for(sandbox, monkeypatch, capsys):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "full"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "CUDA" in err[0] and "--device cpu" in err[0]
    assert not (sandbox / "results").exists()
    run_book.check_device_for_profile("full", "cpu")  # explicit: the cost is said, and the run goes on
    warning = capsys.readouterr().err
    assert "22.5 GB" in warning and "490 s" in warning
    run_book.check_device_for_profile("smoke", "auto")  # the smoke profile runs anywhere
    assert capsys.readouterr().err == ""


def test_a_second_run_on_the_same_profile_is_refused_naming_the_first(sandbox, capsys):
    folder = sandbox / "results" / "smoke"
    folder.mkdir(parents=True)
    lock = run_book.acquire_lock(folder)
    held = json.loads(lock.read_text())
    assert held["pid"] == __import__("os").getpid() and held["started_at"] and "mfbook.run_book" in held["command"]
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"pid {held['pid']}" in err and held["started_at"] in err and held["command"] in err
    assert not (folder / "01_tiny").exists()
    run_book.release_lock(lock)
    assert not lock.exists()
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])  # free again; released after the run
    assert (folder / "01_tiny" / "provenance.json").exists() and not lock.exists()


def test_a_lock_of_a_process_that_is_gone_is_taken_over_with_a_warning(sandbox, capsys):
    folder = sandbox / "results" / "smoke"
    folder.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (folder / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "started_at": "yesterday", "command": "x"}))
    lock = run_book.acquire_lock(folder)
    assert json.loads(lock.read_text())["pid"] == __import__("os").getpid()
    assert "stale" in capsys.readouterr().err
    run_book.release_lock(lock)


def test_a_failed_run_never_rewrites_the_record_of_the_last_complete_one(sandbox):
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    record = sandbox / "results" / "smoke" / "book_run.json"
    before = record.read_bytes()
    assert list(json.loads(before)["chapters"]) == ["01_tiny"]
    (sandbox / "notebooks" / "02_bad.py").write_text(NOTEBOOK_OK.replace("ch.finish()", "raise RuntimeError('boom')"))
    with pytest.raises(SystemExit):
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--keep-going"])
    assert record.read_bytes() == before
    # a successful --only run writes the record of its own chapters (two runs' spans share no clock: never merged)
    (sandbox / "notebooks" / "03_more.py").write_text(NOTEBOOK_OK.replace("01_tiny", "03_more"))
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--only", "03_more"])
    assert list(json.loads(record.read_text())["chapters"]) == ["03_more"]


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_an_unwritable_results_folder_is_one_clear_line_and_exit_2(where, sandbox, capsys):
    # tests run as root, where chmod does not stop writes: a folder under a file, or under /proc, cannot be made
    (sandbox / "a_file").write_text("")
    bad = sandbox / "a_file" / "results" if where == "under_a_file" else Path("/proc/mfbook-results")
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--results", str(bad)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and str(bad) in err[0] and "Traceback" not in err[0]


@pytest.mark.parametrize("command", ["execute", "site"])
@pytest.mark.parametrize("name, says", [("a" * 300, "a folder name of 300 bytes"),
                                        ("x/" + "b" * 256 + "/y", "a folder name of 256 bytes"),
                                        ("/".join(["c" * 250] * 17), "valid: a path shorter than")])
def test_a_results_folder_name_too_long_for_the_file_system_is_one_clear_line(command, name, says, sandbox, capsys,
                                                                               monkeypatch):
    monkeypatch.chdir(sandbox)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main([command, "--results", name])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --results ") and "valid:" in err[0], err
    assert says in err[0], err
    assert sorted(p.name for p in sandbox.iterdir()) == ["notebooks"]  # nothing made


def test_site_names_a_missing_results_folder_or_profile_in_one_line(sandbox, capsys):
    for args, named in ((["--results", str(sandbox / "nowhere")], "nowhere"), (["--profile", "tiny"], "tiny"),
                        (["--results", str(sandbox / "notebooks")], "no executed results")):
        with pytest.raises(SystemExit) as exit_info:
            run_book.main(["site", *args])
        err = capsys.readouterr().err.strip().splitlines()
        assert exit_info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and named in err[0], err


def test_a_publish_error_removes_the_staging_folder_and_is_one_clear_line(sandbox, monkeypatch, capsys):
    (sandbox / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK)

    def refuse(staging, final):
        raise PermissionError(13, "Permission denied", str(final))

    patch_runner(monkeypatch, "publish", refuse)
    with pytest.raises(SystemExit) as exit_info:
        run_book.main(["execute", "--profile", "smoke", "--device", "cpu"])
    assert exit_info.value.code == 2
    folder = sandbox / "results" / "smoke"
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line.startswith("error: ")]
    assert len(err) == 1 and str(folder / "01_tiny") in err[0] and "Permission denied" in err[0]
    assert not list(folder.glob(".staging-*")) and not (folder / "book_run.json").exists()
    assert not (folder / ".lock").exists()


def test_the_results_folder_is_chosen_and_the_kernels_are_told_where_it_is(sandbox):
    nb = NOTEBOOK_OK.replace('ch.save_table(pd.DataFrame({"x": [1, 2], "y": [0.5, 1 / 3]}), "numbers")',
                             'from mfbook import paths\n'
                             'ch.save_table(pd.DataFrame({"results": [str(paths.results_dir())]}), "numbers")')
    (sandbox / "notebooks" / "01_tiny.py").write_text(nb)
    other = sandbox / "elsewhere"
    run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--results", str(other)])
    assert pd.read_csv(other / "smoke" / "01_tiny" / "numbers.csv").results.tolist() == [str(other.resolve())]
    assert (other / "smoke" / "book_run.json").exists() and not (sandbox / "results").exists()


def test_paths_say_where_a_profiles_fresh_results_are(tmp_path, monkeypatch):
    from mfbook import paths

    monkeypatch.setattr(paths, "BUILD_RESULTS_DIR", tmp_path / "_build" / "results")
    monkeypatch.setattr(paths, "RESULTS_DIR", tmp_path / "results")
    assert paths.fresh_results_dir("smoke") == tmp_path / "results" / "smoke"
    (tmp_path / "_build" / "results" / "smoke" / "01_a").mkdir(parents=True)
    (tmp_path / "_build" / "results" / "smoke" / "01_a" / "01_a.ipynb").write_text("{}")
    assert paths.fresh_results_dir("smoke") == tmp_path / "_build" / "results" / "smoke"
    monkeypatch.delenv(paths.RESULTS_ENV, raising=False)
    assert paths.results_dir() == tmp_path / "results"
    monkeypatch.setenv(paths.RESULTS_ENV, str(tmp_path / "x"))
    assert paths.results_dir() == tmp_path / "x"


SIGTERM_RUNNER = """
import sys
from pathlib import Path
from mfbook import run_book
from mfbook.run_book import notebook
root = Path(sys.argv[1])
notebook.NOTEBOOK_DIR, notebook.FAILED_DIR = root / "notebooks", root / "failed"  # read there only
run_book.main(["execute", "--profile", "smoke", "--device", "cpu", "--results", str(root / "results")])
"""


def test_sigterm_stops_the_kernels_keeps_the_partly_executed_notebook_removes_the_staging_and_exits_non_zero(tmp_path):
    import os
    import signal
    import time

    (tmp_path / "notebooks").mkdir()
    marker = tmp_path / "started"
    (tmp_path / "notebooks" / "01_tiny.py").write_text(NOTEBOOK_OK.replace(
        "ch.finish()", "print('before' + ' the ' + 'cut')\n# %%\n"  # a finished cell's output, then the long cell
                       f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
                       "ch.finish()"))
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "book_run.json").write_text("{}\n")
    proc = subprocess.Popen([sys.executable, "-c", SIGTERM_RUNNER, str(tmp_path)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert marker.exists(), proc.communicate()[1]
    kernel = int(marker.read_text())
    assert list((tmp_path / "results" / "smoke").glob(".staging-*"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "SIGTERM" in err and "Traceback" not in err
    folder = tmp_path / "results" / "smoke"
    assert not list(folder.glob(".staging-*")) and not (folder / ".lock").exists()
    assert (folder / "book_run.json").read_text() == "{}\n"
    kept = tmp_path / "failed" / "smoke" / "01_tiny.ipynb"  # where the cut-short chapter's time went stays readable
    assert kept.is_file() and "partly executed notebook" in err and "before the cut" in kept.read_text()
    for _ in range(50):  # the kernel was stopped
        try:
            os.kill(kernel, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the kernel {kernel} still runs")


def test_the_numerics_fingerprint_is_kept_per_machine_and_a_broken_memo_is_recomputed(tmp_path, monkeypatch):
    monkeypatch.setenv("MFCORE_CACHE", str(tmp_path))
    numerics.numerics_fingerprint.cache_clear()
    try:
        computed = numerics.computed_numerics_fingerprint()
        first = numerics.numerics_fingerprint()
        path = numerics._fingerprint_memo_path()
        assert first == computed and path.is_file() and path.is_relative_to(tmp_path)
        assert json.loads(path.read_text()) == computed
        numerics.numerics_fingerprint.cache_clear()
        path.write_text("{not json")  # a torn or foreign file is not trusted: the value is computed again
        assert numerics.numerics_fingerprint() == computed
        assert json.loads(path.read_text()) == computed
    finally:
        numerics.numerics_fingerprint.cache_clear()
