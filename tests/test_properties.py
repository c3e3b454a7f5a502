"""Properties that must hold for every input, checked on generated ones (hypothesis): the
metrics and their aggregation, sentence chunks and Gutenberg cleaning, and the record file a
killed run leaves behind. docs/reliability.md lists them."""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cram_harness import metrics
from cram_harness.atomic import write_text_atomic
from cram_harness.data.text import (
    _ABBREVIATIONS,
    chunk_sentences,
    split_sentences,
    strip_gutenberg,
)
from cram_harness.results.records import RecordStore, SampleRecord, read_records, record_key
from tests.conftest import record as a_record

# No example database: nothing is written into the checkout.
PROPERTY = settings(max_examples=75, deadline=None, database=None)

unit = st.floats(0.0, 1.0)
lengths = st.sampled_from([8, 16, 32, 48, 64, 80, 96, 128, 160, 192, 256, 320, 384, 512, 768])


def same(a: metrics.MeanStd, b: metrics.MeanStd) -> bool:
    """Equal, NaN (no samples) included."""
    return all(x == y or (math.isnan(x) and math.isnan(y))
               for x, y in zip((a.mean, a.std, a.stderr, a.n), (b.mean, b.std, b.stderr, b.n)))


# --- metrics and aggregation ------------------------------------------------------------------


record = st.builds(
    SampleRecord,
    key=st.just("k"),
    length=st.just(8),
    greedy_exact=st.booleans(),
    best_accuracy=unit,
    token_gain=st.floats(-2000, 2000),
    information_gain=st.floats(-1e4, 1e4),
    information_gain_bits=st.floats(-1e4, 1e4),
)


@PROPERTY
@given(st.lists(record, max_size=30).flatmap(lambda recs: st.tuples(st.just(recs),
                                                                       st.permutations(recs))))
def test_full_vector_gains_do_not_depend_on_sample_order(pair):
    records, shuffled = pair

    def gains(recs):
        reading = metrics.Reading(recs)
        return {m.name: m.compute(reading) for m in metrics.METRICS
                if set(m.kinds) & set(metrics.GAIN_KINDS) and m.aggregation == "mean_std"}

    before, after = gains(records), gains(shuffled)
    assert before.keys() == after.keys() == {"token_gain", "information_gain",
                                             "information_gain_bits"}
    for name in before:
        assert same(before[name], after[name]), name
    full = [r for r in records if r.best_accuracy <= metrics.LOSSLESS_THRESHOLD]
    assert before["token_gain"].n == len(full)


accuracy_tables = st.dictionaries(lengths, st.lists(unit, min_size=1, max_size=8), max_size=8)


@PROPERTY
@given(table=accuracy_tables, data=st.data())
def test_raising_an_accuracy_never_lowers_decoding_capacity(table, data):
    assume(table)
    length = data.draw(st.sampled_from(sorted(table)))
    i = data.draw(st.integers(0, len(table[length]) - 1))
    raised = {k: list(v) for k, v in table.items()}
    raised[length][i] = data.draw(st.floats(table[length][i], 1.0))
    before, after = metrics.decoding_capacity(table), metrics.decoding_capacity(raised)
    assert (after if after is not None else -1) >= (before if before is not None else -1)


@PROPERTY
@given(table=accuracy_tables)
def test_decoding_capacity_is_a_tested_length_or_none(table):
    capacity = metrics.decoding_capacity(table)
    assert capacity is None or capacity in table
    perfect = {k: [1.0] * len(v) for k, v in table.items()}
    assert metrics.decoding_capacity(perfect) == (max(table) if table else None)


@PROPERTY
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50))
def test_mean_std_matches_the_statistics_module(values):
    stats = metrics.mean_std(values)
    scale = max(1.0, max(abs(v) for v in values))
    assert stats.n == len(values)
    assert stats.mean == pytest.approx(statistics.fmean(values), rel=1e-12, abs=1e-12 * scale)
    if len(values) == 1:
        assert math.isnan(stats.std) and math.isnan(stats.stderr)
    else:
        assert stats.std == pytest.approx(statistics.stdev(values), rel=1e-9, abs=1e-9 * scale)
        assert stats.stderr == pytest.approx(statistics.stdev(values) / math.sqrt(len(values)),
                                             rel=1e-9, abs=1e-9 * scale)


@PROPERTY
@given(d=st.integers(1, 16384), vocab=st.integers(2, 1_000_000))
def test_eq1_capacity_grows_with_d_and_shrinks_with_the_vocabulary(d, vocab):
    eq1 = metrics.theoretical_capacity(d, vocab)
    assert eq1 > 0
    assert metrics.theoretical_capacity(d + 1, vocab) > eq1
    assert metrics.theoretical_capacity(d, vocab + 1) < eq1


# --- sentences and chunks ---------------------------------------------------------------------

word = st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)


@st.composite
def sentences(draw) -> str:
    """A sentence as split_sentences sees one: capitalized, ending in . ! or ? (maybe a
    closing quote), not ending in a title ("Mr.") or an initial ("J.")."""
    words = draw(st.lists(word, min_size=1, max_size=14))
    assume(words[-1] not in _ABBREVIATIONS and len(words[-1]) > 1)
    end = draw(st.sampled_from([".", "!", "?", "...", "?!", '."', "!'"]))
    return " ".join([words[0].capitalize(), *words[1:]]) + end


@PROPERTY
@given(st.lists(sentences(), max_size=60), st.integers(1, 60), st.integers(0, 60),
       st.integers(0, 2**32 - 1))
def test_chunks_never_split_a_sentence(sents, min_words, extra, seed):
    max_words = min_words + extra
    chunks = chunk_sentences(sents, min_words, max_words, seed)
    flat = [s for chunk in chunks for s in chunk]
    assert flat == sents[: len(flat)]  # whole sentences, in order, none changed
    assert all(chunks)
    n_words = [sum(len(s.split()) for s in chunk) for chunk in chunks]
    rest = sum(len(s.split()) for s in sents[len(flat):])
    assert rest < min_words  # only a short remainder is dropped
    if len(chunks) > 1:
        assert all(n >= min_words for n in n_words)
    for chunk, n in zip(chunks, n_words):  # past max_words only by one very long sentence
        assert n <= max_words or len(chunk[-1].split()) > max_words - min_words
    assert chunk_sentences(sents, min_words, max_words, seed) == chunks


@PROPERTY
@given(st.lists(sentences(), min_size=1, max_size=30))
def test_split_sentences_gives_back_the_sentences_it_was_given(sents):
    assert split_sentences(" ".join(sents)) == sents
    assert split_sentences("\n\n  ".join(sents)) == sents  # whatever whitespace between


@PROPERTY
@given(st.text())
def test_split_sentences_never_loses_text(text):
    assert " ".join(split_sentences(text)) == " ".join(text.split())


# --- Gutenberg boilerplate --------------------------------------------------------------------

HEADERS = [
    "The Project Gutenberg EBook of Katrine, by Elinor Macartney Lane\n\nThis eBook is for "
    "the use of anyone anywhere at no cost and with\nalmost no restrictions whatsoever.  You "
    "may copy it, give it away or\nre-use it under the terms of the Project Gutenberg License "
    "included\nwith this eBook or online at www.gutenberg.net\n\n\nTitle: Katrine\n\nAuthor: "
    "Elinor Macartney Lane\n\nRelease Date: November 8, 2004 [EBook #14263]\n\nLanguage: "
    "English\n\nCharacter set encoding: ISO-8859-1\n\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK KATRINE ***\n",
    "The Project Gutenberg eBook of Jack Sheppard\n\nThis ebook is for the use of anyone "
    "anywhere in the United States and\nmost other parts of the world at no cost.\n\n"
    "Title: Jack Sheppard\n\n*** START OF THE PROJECT GUTENBERG EBOOK JACK SHEPPARD ***\n",
    "The Project Gutenberg Etext of The Little Colonel's Hero\n\n**Welcome To The World of "
    "Free Plain Vanilla Electronic Texts**\n\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN "
    "ETEXTS*Ver.04.29.93*END*\n",
]
CREDITS = ["", "Produced by Suzanne Shell, Sjaani and PG Distributed Proofreaders\n\n",
           "Produced by David Widger\n\n\n"]
FOOTERS = [
    "*** END OF THIS PROJECT GUTENBERG EBOOK KATRINE ***\n",
    "*** END OF THE PROJECT GUTENBERG EBOOK JACK SHEPPARD ***\n",
    "End of the Project Gutenberg EBook of Katrine, by Elinor Macartney Lane\n\n",
    "End of Project Gutenberg's The Little Colonel's Hero, by Annie Fellows Johnston\n\n",
]
LICENCE = (
    "\n***** This file should be named 14263-8.txt or 14263-8.zip *****\nThis and all "
    "associated files of various formats will be found in:\n        "
    "http://www.gutenberg.net/1/4/2/6/14263/\n\nUpdated editions will replace the previous "
    "one--the old editions\nwill be renamed.\n\n*** START: FULL LICENSE ***\n\nTHE FULL PROJECT "
    "GUTENBERG LICENSE\nPLEASE READ THIS BEFORE YOU DISTRIBUTE OR USE THIS WORK\n\nTo protect "
    "the Project Gutenberg-tm mission of promoting the free\ndistribution of electronic works, "
    "by using or distributing this work\n(or any other work associated in any way with the "
    "phrase \"Project\nGutenberg\"), you agree to comply with all the terms of the Full "
    "Project\nGutenberg-tm License (available with this file or online at\n"
    "http://gutenberg.net/license).\n\nProject Gutenberg is a registered trademark, and may "
    "not be used if you\ncharge for the eBook.\n"
)
LICENCE_WORDS = ("gutenberg", "license", "trademark", "small print", "ebook", "etext")

paragraph = st.lists(sentences(), min_size=1, max_size=6).map(" ".join)
stories = st.lists(paragraph, min_size=1, max_size=6).flatmap(
    lambda paras: st.sampled_from(["\n\n", "\n\n\n", "\n    \n"]).map(lambda sep: sep.join(paras)))


@PROPERTY
@given(story=stories, header=st.sampled_from(HEADERS), credits=st.sampled_from(CREDITS),
       footer=st.sampled_from(FOOTERS), licence=st.booleans(), crlf=st.booleans(),
       gap=st.sampled_from(["", "\n", "\n\n\n"]))
def test_strip_gutenberg_leaves_the_story_and_never_the_licence(story, header, credits, footer,
                                                                 licence, crlf, gap):
    assume(not any(w in story.lower() for w in LICENCE_WORDS + ("produced",)))
    book = header + gap + credits + story + "\n\n" + gap + footer + (LICENCE if licence else "")
    if crlf:
        book, story = book.replace("\n", "\r\n"), story.replace("\n", "\r\n")
    body = strip_gutenberg(book)
    assert body == story.strip()
    assert not any(w in body.lower() for w in LICENCE_WORDS + ("produced by",))


@PROPERTY
@given(stories)
def test_strip_gutenberg_keeps_a_text_without_markers(story):
    assert strip_gutenberg(f"\n  {story}\n\n") == story.strip()


# --- records a killed run leaves behind -------------------------------------------------------

payloads = st.dictionaries(st.text("abcxyz_", min_size=1, max_size=5),
                           st.one_of(st.integers(), st.floats(allow_nan=False), st.text()),
                           max_size=4)


def _line(rec: dict) -> str:
    return json.dumps(rec, sort_keys=True, allow_nan=True) + "\n"


def _keys_on_disk(path: Path) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [r["key"] for r in read_records(path)]


def _cut_and_resume(payloads_: list[dict], cut_of) -> list[str]:
    """Append records, cut the last one's line (a kill mid-write), reopen the store as a rerun
    does, append the cut record again if the store lost it; the keys then on disk."""
    records = [a_record(f"k{i}", **p) for i, p in enumerate(payloads_)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "records.jsonl"
        store = RecordStore(path)
        for rec in records[:-1]:
            store.append(rec)
        line = _line(records[-1])
        with open(path, "a", encoding="utf-8") as f:
            f.write(line[: cut_of(line)])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store = RecordStore(path)
        assert all(rec["key"] in store for rec in records[:-1])  # every whole record kept
        if records[-1]["key"] not in store:
            store.append(records[-1])  # the rerun redoes the sample that was cut
            assert path.read_text(encoding="utf-8").endswith("\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert RecordStore(path).get(records[-1]["key"]).to_json() == records[-1]
        return _keys_on_disk(path)


@PROPERTY
@given(st.lists(payloads, min_size=1, max_size=6), st.data())
def test_a_line_cut_anywhere_loses_no_whole_record_and_duplicates_none(payloads_, data):
    keys = _cut_and_resume(payloads_, lambda line: data.draw(st.integers(0, len(line) - 2)))
    assert sorted(keys) == sorted(f"k{i}" for i in range(len(payloads_)))


def test_a_line_cut_just_before_its_newline_is_not_duplicated():
    keys = _cut_and_resume([{"a": 1}, {"b": 2}], lambda line: len(line) - 1)
    assert sorted(keys) == ["k0", "k1"]


@PROPERTY
@given(st.text(st.characters(blacklist_categories=("Cs",))))
def test_atomic_write_gives_back_exactly_what_was_written(text):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "results_x.json"
        path.write_text("old")
        write_text_atomic(path, text)
        assert path.read_bytes().decode("utf-8") == text
        assert [p.name for p in Path(tmp).iterdir()] == ["results_x.json"]


@PROPERTY
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.integers(), max_size=6), st.data())
def test_record_keys_do_not_depend_on_option_order(optimizer, data):
    shuffled = dict(data.draw(st.permutations(list(optimizer.items()))))
    key = record_key("m", "sha", 8, 1, optimizer)
    assert key == record_key("m", "sha", 8, 1, shuffled)
    assert key != record_key("m", "sha", 16, 1, optimizer)
    assert key != record_key("m", "sha", 8, 2, optimizer)
