"""Figures and the HTML report, on small synthetic results files (no model runs)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

from cram_harness.reporting import figures  # noqa: E402
from cram_harness.reporting.figures import Skip, make_figures  # noqa: E402
from cram_harness.reporting.html import write_report  # noqa: E402
from cram_harness.reporting.runs import load_runs  # noqa: E402
from cram_harness.reporting.tables import load_results  # noqa: E402

LENGTHS = (8, 16, 32)


def _record(model: str, dataset: str, length: int, n_mem: int, i: int, lr: float) -> dict:
    """A sample record: lossless up to 16 tokens with one vector (32 with two)."""
    n = length - 1
    full = length > 16 * n_mem
    base_loss = 3.0 + 0.5 * i + 0.01 * length
    best_loss = base_loss - 40.0 / n if full else 0.01
    best_acc = 0.6 + 0.05 * i if full else 1.0
    return {"key": f"{model}-{dataset}-{length}-{n_mem}-{i}-{lr}", "dataset": dataset,
            "length": length, "n_mem": n_mem, "num_tokens": length, "num_predicted": n,
            "base_loss": base_loss, "best_loss": best_loss + 0.05, "min_loss": best_loss,
            "base_accuracy": 0.1, "best_accuracy": best_acc,
            "token_gain": (best_acc - 0.1) * length,
            "information_gain": (base_loss - best_loss) * length,
            "information_gain_bits": (base_loss - best_loss) * length / 0.693,
            "greedy_exact": not full and i != 2, "converged": not full,
            "config": {"lr": lr, "max_steps": 100, "min_margin": 0.0, "dtype": "fp32"}}


def write_run(root: Path, model: str = "tiny-a", lr: float = 0.01, datasets=("random",),
              stamp: str = "2025-01-01T00-00-00", n_samples: int = 3, mems=(1, 2),
              analyses: dict | None = None, config_lr: float | None = None) -> Path:
    """A results file and its samples_<task>_<stamp>.jsonl files, as the evaluator writes them."""
    out = root / model.replace("<", "_").replace(">", "_")
    out.mkdir(parents=True, exist_ok=True)
    recs = [_record(model, d, length, k, i, lr) for d in datasets for length in LENGTHS
            for k in mems for i in range(n_samples)]
    results, configs, sweeps = {}, {}, []
    for d in datasets:
        one = [r for r in recs if r["dataset"] == d and r["n_mem"] == 1]
        full = [r for r in one if r["best_accuracy"] <= 0.99]
        tg = sum(r["token_gain"] for r in full) / len(full)
        ig = sum(r["information_gain"] for r in full) / len(full)
        results[f"capacity_{d}"] = {"decoding_capacity,none": 16}
        results[f"token_gain_{d}"] = {"token_gain,none": tg, "token_gain_std,none": 2.0,
                                      "capacity_utilization,none": tg / 150.0,
                                      "n_full_vectors,none": len(full)}
        results[f"info_gain_{d}"] = {"information_gain,none": ig, "information_gain_std,none": 3.0,
                                     "n_full_vectors,none": len(full)}
        results[f"mem_scaling_{d}"] = {f"decoding_capacity_k{k},none": 16 * k for k in mems}
        for kind in ("capacity", "token_gain", "info_gain", "mem_scaling"):
            configs[f"{kind}_{d}"] = {"kind": kind, "dataset": d, "lengths": list(LENGTHS)}
        for k in mems:
            accs = {str(n): sum(r["best_accuracy"] for r in recs if r["dataset"] == d
                                and r["n_mem"] == k and r["length"] == n) / n_samples
                    for n in LENGTHS}
            sweeps.append({"dataset": d, "n_mem": k, "mean_accuracy": accs})
    data = {"model_name": model, "results": results, "configs": configs, "sweeps": sweeps,
            "model_info": {"d_model": 64, "vocab_size": 1000, "eq1_capacity": 150.0},
            "config": {"model": model, "limit": n_samples, "lr": config_lr, "max_steps": 100,
                       "min_margin": None, "seed": 0, "dtype": "auto", "lengths": list(LENGTHS)},
            "environment": {"device": "cpu", "torch": "2.13.0", "cram-harness": "0.1"}}
    if analyses:
        data["analyses"] = analyses
    for task in ("capacity", "info_gain"):  # tasks of a dataset share records: dedup by key
        for d in datasets:
            lines = "".join(json.dumps(r) + "\n" for r in recs if r["dataset"] == d)
            (out / f"samples_{task}_{d}_{stamp}.jsonl").write_text(lines)
    path = out / f"results_{stamp}.json"
    path.write_text(json.dumps(data))
    return path


ANALYSES = {
    "similarity_random": {"kind": "similarity", "dataset": "random",
                          "intra_cosine": [0.1, 0.2, 0.15, 0.3, 0.25],
                          "inter_cosine": [0.0, 0.05, -0.02, 0.1, 0.12, 0.08]},
    "interpolation_random": {"kind": "interpolation", "dataset": "random",
                             "thetas": [0.0, 0.25, 0.5, 0.75, 1.0],
                             "curves": [[1.0, 0.8, 0.5, 0.9, 1.0], [1.0, 0.6, 0.3, 0.7, 1.0]]},
}


def _legend(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def _n_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets"))


def test_load_runs_labels_keep_settings_apart(tmp_path):
    write_run(tmp_path / "x", "tiny-a", lr=0.01)
    write_run(tmp_path / "y", "tiny-a", lr=0.1, config_lr=0.1)
    write_run(tmp_path / "z", "tiny-b", lr=0.01)
    runs = load_runs(load_results([tmp_path]))
    labels = sorted(r.label for r in runs)
    assert labels == ["tiny-a (lr=0.01)", "tiny-a (lr=0.1)", "tiny-b"]
    # 3 lengths x 2 numbers of vectors x 3 samples, in two task files: read once each
    assert all(len(r.samples) == len(LENGTHS) * 2 * 3 for r in runs)


def test_same_settings_same_model_get_the_file_time(tmp_path):
    write_run(tmp_path, "tiny-a", stamp="2025-01-01T00-00-00")
    write_run(tmp_path, "tiny-a", stamp="2025-02-01T00-00-00")
    labels = {r.label for r in load_runs(load_results([tmp_path]))}
    assert labels == {"tiny-a [2025-01-01T00-00-00]", "tiny-a [2025-02-01T00-00-00]"}


def test_capacity_bars_one_per_model_and_dataset(tmp_path):
    write_run(tmp_path, "tiny-a", datasets=("random", "pg19"))
    write_run(tmp_path, "tiny-b", datasets=("random", "pg19"))
    fig = figures.build_capacity_figure(load_runs(load_results([tmp_path])))
    (ax,) = fig.axes
    assert sum(len(c) for c in ax.containers) == 4
    assert [b.get_height() for c in ax.containers for b in c] == [16] * 4
    assert "tokens" in ax.get_ylabel()
    assert _legend(ax) == ["tiny-a", "tiny-b"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["random", "pg19"]


def test_different_lr_two_legend_entries(tmp_path):
    write_run(tmp_path / "x", "tiny-a", lr=0.01)
    write_run(tmp_path / "y", "tiny-a", lr=0.1)
    runs = load_runs(load_results([tmp_path]))
    (ax,) = figures.build_capacity_figure(runs).axes
    assert sorted(_legend(ax)) == ["tiny-a (lr=0.01)", "tiny-a (lr=0.1)"]
    ax = figures.build_accuracy_length_figure(runs).axes[0]
    assert sum("tiny-a (lr=" in t for t in _legend(ax)) == 4  # 2 runs x 2 numbers of vectors


def test_ce_figure_points_threshold_and_fit(tmp_path):
    write_run(tmp_path, "tiny-a", n_samples=3)
    write_run(tmp_path, "tiny-b", n_samples=4)
    runs = load_runs(load_results([tmp_path]))
    fig = figures.build_ce_figure(runs)
    assert len(fig.axes) == 2
    for ax, run in zip(fig.axes, runs, strict=True):
        assert run.label in ax.get_title()
        assert _n_points(ax) == sum(r["n_mem"] == 1 for r in run.samples)
        assert "nats" in ax.get_xlabel() and "nats" in ax.get_ylabel()
        labels = _legend(ax)
        assert any("lossless (greedy exact)" in t for t in labels)
        assert any(t.startswith("fit (not lossless, n=") for t in labels)
        ig = run.results["results"]["info_gain_random"]["information_gain,none"]
        (threshold,) = [ln for ln in ax.lines if ln.get_label().startswith("lossless threshold")]
        assert threshold.get_xdata()[0] == pytest.approx(ig)
        # lossless: greedy exact and best accuracy 1 (short texts, sample 2 never greedy exact)
        stars = [c for c in ax.collections if "lossless (greedy" in c.get_label()]
        want = sum(1 for r in run.samples if r["n_mem"] == 1 and r["greedy_exact"])
        assert sum(len(c.get_offsets()) for c in stars) == want


def test_ce_figure_says_when_there_are_too_few_points_for_a_fit(tmp_path):
    write_run(tmp_path, "tiny-a", n_samples=1)
    run = load_runs(load_results([tmp_path]))[0]
    run.samples = [r for r in run.samples if r["length"] == 32 and r["n_mem"] == 1]
    (ax,) = figures.build_ce_figure([run]).axes
    assert not any(t.startswith("fit") for t in _legend(ax))
    assert any("no fit: 1 text not lossless, 3 needed" in t.get_text() for t in ax.texts)


def test_capacity_figure_starts_at_zero_and_skips_when_there_is_none(tmp_path):
    path = write_run(tmp_path, "tiny-a")
    (ax,) = figures.build_capacity_figure(load_runs(load_results([tmp_path]))).axes
    assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > 16  # room for the bar's label
    data = json.loads(path.read_text())
    data["results"]["capacity_random"]["decoding_capacity,none"] = None
    path.write_text(json.dumps(data))
    with pytest.raises(Skip, match="no length reached mean accuracy 0.99"):
        figures.build_capacity_figure(load_runs(load_results([tmp_path])))


def test_mem_scaling_marks_capacities_at_the_longest_length_run(tmp_path):
    write_run(tmp_path, "tiny-a")  # k=2 decodes 32, the longest length run: a lower bound
    (ax,) = figures.build_mem_scaling_figure(load_runs(load_results([tmp_path]))).axes
    (marker,) = [ln for ln in ax.lines if "lower bound" in ln.get_label()]
    assert list(marker.get_xdata()) == [2] and list(marker.get_ydata()) == [32]


def test_mem_scaling_skip_names_tasks_that_exist(tmp_path):
    """Fig. 4 without data says what to run for the datasets used: a task the run ran on each
    (so one that exists), over several numbers of vectors."""
    path = write_run(tmp_path, "tiny-a", datasets=("gutenberg", "random"), mems=(1,))
    data = json.loads(path.read_text())
    data["results"] = {k: v for k, v in data["results"].items() if "mem_scaling" not in k}
    path.write_text(json.dumps(data))
    with pytest.raises(Skip) as skipped:
        figures.build_mem_scaling_figure(load_runs(load_results([tmp_path])))
    assert str(skipped.value).endswith(
        "run capacity_gutenberg --mem-tokens 1,2,4 or capacity_random --mem-tokens 1,2,4")


def test_mem_scaling_ideal_line_and_band(tmp_path):
    write_run(tmp_path, "tiny-a")
    (ax,) = figures.build_mem_scaling_figure(load_runs(load_results([tmp_path]))).axes
    (ideal,) = [ln for ln in ax.lines if ln.get_label().startswith("ideal")]
    assert list(ideal.get_ydata()) == [16, 32]
    assert any("std" in t for t in _legend(ax))
    assert "tokens" in ax.get_ylabel()


def _edit(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _no_mem_scaling(data: dict) -> None:
    data["results"] = {k: v for k, v in data["results"].items() if "mem_scaling" not in k}


def _series(ax, label: str) -> list[float]:
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return list(line.get_ydata())


def test_mem_scaling_from_sweeps_counts_with_the_tasks_threshold(tmp_path):
    """Without mem_scaling results, capacity at each k comes from the sweeps' mean accuracy
    with the capacity task's threshold (0.9 here), not the paper's 0.99."""
    path = write_run(tmp_path, "tiny-a")

    def change(data):
        _no_mem_scaling(data)
        data["configs"]["capacity_random"]["threshold"] = 0.9
        (k2,) = [s for s in data["sweeps"] if s["n_mem"] == 2]
        k2["mean_accuracy"]["32"] = 0.95  # decoded at 0.9, not at 0.99

    _edit(path, change)
    (ax,) = figures.build_mem_scaling_figure(load_runs(load_results([tmp_path]))).axes
    assert _series(ax, "tiny-a (random)") == [16, 32]


def test_mem_scaling_from_sweeps_reads_the_capacity_tasks_own_number(tmp_path):
    """The capacity task reports its smallest k: Fig. 4 shows that number, as Fig. 1 does."""
    path = write_run(tmp_path, "tiny-a")

    def change(data):
        _no_mem_scaling(data)
        data["results"]["capacity_random"]["decoding_capacity,none"] = 8

    _edit(path, change)
    runs = load_runs(load_results([tmp_path]))
    (ax,) = figures.build_mem_scaling_figure(runs).axes
    assert _series(ax, "tiny-a (random)") == [8, 32]
    (bars,) = figures.build_capacity_figure(runs).axes[0].containers
    assert [b.get_height() for b in bars] == [8]


def test_ce_line_without_info_gain_results_counts_full_vectors_by_the_tasks_threshold(tmp_path):
    """No info_gain task in the results: the line is the mean information gain over the
    records whose vector is full by the gains task's threshold (0.6 here, not 0.99)."""
    path = write_run(tmp_path, "tiny-a")

    def change(data):
        del data["results"]["info_gain_random"]
        data["configs"]["token_gain_random"]["threshold"] = 0.6
        data["configs"]["capacity_random"]["threshold"] = 0.99

    _edit(path, change)
    for samples in path.parent.glob("samples_*.jsonl"):  # a gain that differs by accuracy
        recs = [json.loads(line) for line in samples.read_text().splitlines()]
        samples.write_text("".join(json.dumps({**r, "information_gain": 100 * r["best_accuracy"]})
                                   + "\n" for r in recs))
    (run,) = load_runs(load_results([tmp_path]))
    (ax,) = figures.build_ce_figure([run]).axes
    full = [r["information_gain"] for r in run.samples
            if r["n_mem"] == 1 and r["best_accuracy"] <= 0.6]
    assert 0 < len(full) < sum(r["n_mem"] == 1 and r["best_accuracy"] <= 0.99
                               for r in run.samples)
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith("lossless threshold")]
    assert line.get_xdata()[0] == pytest.approx(sum(full) / len(full))
    assert "full-vector samples" in line.get_label()


def test_accuracy_length_draws_the_tasks_threshold(tmp_path):
    path = write_run(tmp_path, "tiny-a")
    _edit(path, lambda data: data["configs"]["capacity_random"].update(threshold=0.9))
    (ax,) = figures.build_accuracy_length_figure(load_runs(load_results([tmp_path]))).axes
    assert "capacity threshold 0.9" in _legend(ax)
    (fig1,) = figures.build_capacity_figure(load_runs(load_results([tmp_path]))).axes
    assert fig1.get_title().endswith("(mean accuracy ≥ 0.9)")


def test_mem_scaling_band_is_the_spread_of_decoded_tokens_at_capacity(tmp_path):
    """The ±1 std band: mean ± sample std of best accuracy x L over the usable records at
    each k's capacity length; a NaN/inf record is not one of them."""
    path = write_run(tmp_path, "tiny-a", n_samples=3)
    samples = sorted(path.parent.glob("samples_capacity_*.jsonl"))[0]
    recs = [json.loads(line) for line in samples.read_text().splitlines()]
    for i, r in enumerate(recs):  # below capacity at k=1 (16 tokens): 0.5, 0.75 and 1.0
        if r["n_mem"] == 1 and r["length"] == 16:
            r["best_accuracy"] = (0.5, 0.75, 1.0)[i % 3]
    recs.append({**recs[0], "key": "faulty", "n_mem": 1, "length": 16, "best_accuracy": 0.0,
                 "numerical_fault": True})
    samples.write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run,) = load_runs(load_results([tmp_path]))
    (ax,) = figures.build_mem_scaling_figure([run]).axes
    (band,) = [c for c in ax.collections if "std" in c.get_label()]
    low = band.get_paths()[0].vertices[:, 1].min()
    decoded = [8.0, 12.0, 16.0]
    mean = sum(decoded) / 3
    std = (sum((d - mean) ** 2 for d in decoded) / 2) ** 0.5
    assert low == pytest.approx(mean - std)


def test_eq1_figure(tmp_path):
    write_run(tmp_path, "tiny-a", datasets=("random", "pg19"))
    ax, ax2 = figures.build_eq1_figure(load_runs(load_results([tmp_path]))).axes
    assert "tokens" in ax.get_xlabel() and "tokens" in ax.get_ylabel()
    assert any(t.startswith("y = x") for t in _legend(ax))
    assert [t.get_text() for t in ax2.get_xticklabels()] == ["pg19 (natural)", "random (random)"]


def test_missing_data_skipped_others_written(tmp_path):
    write_run(tmp_path / "r", "tiny-a")
    written, skipped = make_figures(load_runs(load_results([tmp_path / "r"])), tmp_path / "out")
    assert set(skipped) == {"fig7_similarity", "fig8_interpolation"}
    assert "similarity" in skipped["fig7_similarity"]
    assert set(written) == set(figures.FIGURES) - set(skipped)
    for (path,) in written.values():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(Skip, match="interpolation"):
        figures.fig_interpolation([], tmp_path / "out")


def test_analysis_figures(tmp_path):
    bare = {name: {k: v for k, v in a.items() if k not in ("kind", "dataset")}
            for name, a in ANALYSES.items()}  # told apart by their keys and task names
    write_run(tmp_path, "tiny-a", analyses=bare)
    runs = load_runs(load_results([tmp_path]))
    (ax,) = figures.build_similarity_figure(runs).axes
    assert any("intra" in t for t in _legend(ax)) and any("inter" in t for t in _legend(ax))
    assert ax.get_title().endswith("tiny-a, random")
    (ax,) = figures.build_interpolation_figure(runs).axes
    lows = [ln for ln in ax.lines if ln.get_label() == "min"][0].get_ydata()
    assert list(lows) == [1.0, 0.6, 0.3, 0.7, 1.0]
    written, skipped = make_figures(runs, tmp_path / "out")
    assert not skipped and set(written) == set(figures.FIGURES)
    paths = figures.fig_interpolation(runs, tmp_path / "out", formats=("png", "svg"))
    assert [p.name for p in paths] == ["fig8_interpolation.png", "fig8_interpolation.svg"]


def test_report_html(tmp_path):
    write_run(tmp_path / "r", "tiny-<b>", analyses=ANALYSES)
    write_run(tmp_path / "r", "tiny-b", lr=0.1)
    page = write_report(load_results([tmp_path / "r"]), tmp_path / "out")
    text = page.read_text()
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert text.count('<img src="data:image/png;base64,') == len(pngs) == len(figures.FIGURES)
    assert '<table class="table1">' in text
    assert "tiny-&lt;b&gt;" in text and "<b>tiny-<" not in text
    assert re.search(r"<td>tiny-b</td><td>random</td><td>64</td><td>150</td><td>16</td>", text)
    assert "<caption>paper · fp32 · 100 steps</caption>" in text
    assert "0.1" in text and "results_2025-01-01T00-00-00.json" in text  # settings section
    assert "http://" not in text and "https://" not in text
    assert not list((tmp_path / "out").glob(".*"))  # no temp files left


def test_report_lists_skipped_figures(tmp_path):
    write_run(tmp_path / "r", "tiny-a")
    text = write_report(load_results([tmp_path / "r"]), tmp_path / "out").read_text()
    assert text.count("data:image/png;base64,") == len(figures.FIGURES) - 2
    assert "no similarity analysis" in text and "no interpolation analysis" in text


def test_html_report_import_does_not_load_matplotlib():
    code = "import sys, cram_harness.reporting.html; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def chromium(tmp_path, *args):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    return subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=10000", *args],
        capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("width", [800, 1400])
def test_report_lays_out_within_the_window_in_a_browser(tmp_path, width):
    """A screenshot of the page in headless Chromium, and its layout as the page measures
    it: every image decoded, margins on both sides, nothing wider than the window (no
    sideways scroll), at a laptop's width and a wide screen's."""
    write_run(tmp_path / "r", "tiny-a", analyses=ANALYSES)
    write_run(tmp_path / "r", "hf:org/a-model-with-a-long-name", lr=0.1)
    page = write_report(load_results([tmp_path / "r"]), tmp_path / "out").resolve().as_uri()
    n = len(figures.FIGURES)
    dom = chromium(tmp_path, f"--window-size={width},2000", "--dump-dom", page)
    assert f'data-images-loaded="{n}/{n}"' in dom.stdout, dom.stderr[-2000:]
    (layout,) = re.findall(r'data-layout="([^"]+)"', dom.stdout)
    layout = json.loads(layout.replace("&quot;", '"'))
    assert layout["page"] <= layout["window"], layout  # no sideways scroll
    assert layout["right"] <= layout["window"] - 16 and layout["left"] >= 16, layout  # margins
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--window-size={width},2000", f"--screenshot={shot}", page)
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (width, 2000)
    assert len(set(image.getdata())) > 16  # text, tables and figures, not a blank page
