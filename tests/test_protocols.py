"""The fast protocol against the paper's on the same texts and settings."""

from cram_harness.evaluator import RunSettings, evaluate

GRID = (2, 3, 4, 6, 8)


def run(model_dir, corpus, out, protocol):
    settings = RunSettings(limit=3, lengths=GRID, max_steps=150, lr=0.3, data_files=corpus,
                           output_path=str(out), device="cpu", stop_below=0,
                           protocol=protocol, batch_size=3)
    (res,) = evaluate(model_dir, ["capacity_pg19", "token_gain_pg19"], settings)
    return res


def test_fast_agrees_with_paper_within_one_grid_step_at_fewer_steps(
        tiny_model_dir, word_corpus, tmp_path):
    paper = run(tiny_model_dir, word_corpus, tmp_path / "paper", "paper")
    fast = run(tiny_model_dir, word_corpus, tmp_path / "fast", "fast")
    cap_paper = paper["results"]["capacity_pg19"]["decoding_capacity,none"]
    cap_fast = fast["results"]["capacity_pg19"]["decoding_capacity,none"]
    index = {None: -1, **{length: i for i, length in enumerate(GRID)}}
    assert abs(index[cap_fast] - index[cap_paper]) <= 1, (cap_paper, cap_fast)
    assert fast["timings"]["optimizer_steps"] < paper["timings"]["optimizer_steps"]
    assert fast["config"]["protocol"] == "fast"


def test_fast_stops_running_a_text_once_it_fails(tiny_model_dir, word_corpus, tmp_path):
    fast = run(tiny_model_dir, word_corpus, tmp_path, "fast")
    sweep = fast["sweeps"][0]
    run_counts = [sweep["samples"][str(length)] for length in GRID if str(length) in sweep
                  ["samples"]]
    assert run_counts == sorted(run_counts, reverse=True)  # never more texts at longer L
    for length, n in sweep["samples"].items():
        assert n + sweep["carried"].get(length, 0) <= 2  # two books in the corpus
