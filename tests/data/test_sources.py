"""Data sources: Gutenberg cleaning, sentence chunks, local files, HF datasets, random words.

All offline and fast: real files under tmp_path and the three shared Gutenberg novels, with
small chunk sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cram_harness.data import (
    SOURCES,
    DataSource,
    HFDataset,
    LocalFiles,
    RandomWords,
    SourceText,
    chunk_sentences,
    second_half,
    split_sentences,
    strip_gutenberg,
)
from cram_harness.errors import CramError
from cram_harness.harness import registry

GUTENBERG = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gutenberg"
NOVELS = sorted(GUTENBERG.glob("*.txt"))
# A line of each story that must survive cleaning: its first words and its last.
STORY = {
    "14263-katrine-1909.txt": ("KATRINE", "Mrs. Francis Ravenel?"),
    "15122-little-colonels-hero-1905.txt": ("THE LITTLE COLONEL'S HERO", "THE MINUTE BOYS OF"),
    "16215-jack-sheppard-1839.txt": ("Transcribers Note", "[Illustration: JACK SHEPPARD]"),
}
needs_novels = pytest.mark.skipif(len(NOVELS) != 3, reason="shared Gutenberg novels not found")


def words(sentences: list[str]) -> int:
    return sum(len(s.split()) for s in sentences)


@pytest.fixture(scope="module")
def novel_sentences() -> dict[str, list[str]]:
    return {f.name: split_sentences(strip_gutenberg(f.read_text(encoding="utf-8"))) for f in NOVELS}


# --- Gutenberg cleaning -----------------------------------------------------------------------


@needs_novels
@pytest.mark.parametrize("path", NOVELS, ids=lambda p: p.name[:12])
def test_strip_gutenberg_real_novels(path: Path) -> None:
    raw = path.read_text(encoding="utf-8")
    body = strip_gutenberg(raw)
    assert "gutenberg" not in body.lower()
    assert "*** START" not in body and "*** END" not in body
    assert "Produced by" not in body[:500]
    assert "License" not in body and "trademark" not in body
    first, last = STORY[path.name]
    assert first in body[:2000] and last in body[-300:]
    assert len(body) > 0.9 * len(raw)


def test_strip_gutenberg_variants() -> None:
    story = "Once upon a time.\nThe end."
    new = f"header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n{story}\n" \
          "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence"
    assert strip_gutenberg(new) == story
    old = f"The Project Gutenberg Etext\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*END*\n" \
          f"{story}\n\nEnd of Project Gutenberg's X, by Y\nlicence Project Gutenberg"
    assert strip_gutenberg(old) == story
    crlf = "h\r\n***START OF THIS PROJECT GUTENBERG EBOOK X***\r\n\r\nProduced by Z\r\n\r\n" \
           "Once.\r\nTwice.\r\n\r\nEnd of the Project Gutenberg EBook of X\r\nlicence"
    assert strip_gutenberg(crlf) == "Once.\r\nTwice."
    assert strip_gutenberg(f"  \n{story}\n\n") == story  # no markers: unchanged, stripped


# --- sentences and chunks ---------------------------------------------------------------------


def test_split_sentences() -> None:
    text = ('He said "Stop!" Then\n\n  he   went. Mr. J. Smith came (late.) "Why?" she asked. '
            "Was it? Yes... it was.  ")
    assert split_sentences(text) == [
        'He said "Stop!"', "Then he went.", "Mr. J. Smith came (late.)",
        '"Why?" she asked.', "Was it?", "Yes... it was.",
    ]
    assert split_sentences("no end mark") == ["no end mark"]
    assert split_sentences("  \n ") == []


@needs_novels
def test_chunks_of_real_novels_keep_sentences_whole(novel_sentences) -> None:
    for name, sentences in novel_sentences.items():
        assert sentences and all(s and s == " ".join(s.split()) for s in sentences)
        chunks = chunk_sentences(sentences, min_words=200, max_words=400, seed=1)
        flat = [s for chunk in chunks for s in chunk]
        assert flat == sentences[: len(flat)], name  # consecutive, no sentence split
        assert words(sentences[len(flat) :]) < 200  # only a short remainder is dropped
        assert all(200 <= words(chunk) <= 400 for chunk in chunks), name
        assert chunk_sentences(sentences, 200, 400, seed=1) == chunks
        assert chunk_sentences(sentences, 200, 400, seed=2) != chunks


def test_chunk_short_book_and_bad_sizes() -> None:
    sentences = ["One two three.", "Four five."]
    assert chunk_sentences(sentences, min_words=100, max_words=200) == [sentences]
    assert chunk_sentences([], 1, 2) == []
    with pytest.raises(CramError, match="min_words"):
        chunk_sentences(sentences, min_words=10, max_words=5)


def test_second_half() -> None:
    assert second_half(["A."]) == "A."
    assert second_half(["A.", "B."]) == "B."
    assert second_half(["A.", "B.", "C."]) == "B. C."
    assert second_half(["A.", "B.", "C.", "D."]) == "C. D."


# --- local files ------------------------------------------------------------------------------


@needs_novels
def test_local_gutenberg_directory() -> None:
    source = LocalFiles(str(GUTENBERG), min_words=1000, max_words=2000)
    assert isinstance(source, DataSource)
    texts = source.texts(None, seed=0)
    assert {t.id.split("#")[0] for t in texts} == {p.name for p in NOVELS}
    assert texts[0].id == f"{NOVELS[0].name}#0"
    assert all(t.text and "gutenberg" not in t.text.lower() for t in texts)
    assert source.texts(5, seed=0) == texts[:5]
    assert source.texts(None, seed=0) == texts
    assert source.texts(None, seed=1) != texts
    json.dumps(source.describe())
    whole = LocalFiles(str(GUTENBERG / "*.txt"), chunk=False).texts(None, 0)
    assert [t.id for t in whole] == [p.name for p in NOVELS]
    assert whole[0].text == strip_gutenberg(NOVELS[0].read_text(encoding="utf-8"))


ROWS = ["First row. It has two sentences.", "Second row here.", "Third! Row? Yes."]


def write_table(path: Path, column: str = "text") -> None:
    if path.suffix == ".jsonl":
        path.write_text("\n".join(json.dumps({column: r, "n": i}) for i, r in enumerate(ROWS)))
    else:
        import pandas as pd

        frame = pd.DataFrame({"n": range(len(ROWS)), column: ROWS})
        if path.suffix == ".csv":
            frame.to_csv(path, index=False)
        else:
            frame.to_parquet(path)


@pytest.mark.parametrize("ext", [".jsonl", ".csv", ".parquet"])
def test_local_tables(tmp_path: Path, ext: str) -> None:
    write_table(tmp_path / f"rows{ext}")
    texts = LocalFiles(str(tmp_path / f"rows{ext}"), chunk=False).texts(None, 0)
    assert texts == [SourceText(f"rows{ext}#{i}", r) for i, r in enumerate(ROWS)]
    chunked = LocalFiles(str(tmp_path), min_words=50, max_words=100).texts(None, 0)  # 1 chunk each
    assert [t.id for t in chunked] == [f"rows{ext}#{i}.0" for i in range(3)]
    assert chunked[0].text == "It has two sentences." and chunked[2].text == "Row? Yes."

    write_table(tmp_path / f"other{ext}", column="story")
    with pytest.raises(CramError, match=r"no column 'text'.*n, story|no column 'text'.*story, n"):
        LocalFiles(str(tmp_path / f"other{ext}")).texts(None, 0)
    story = LocalFiles(str(tmp_path / f"other{ext}"), column="story", chunk=False).texts(2, 0)
    assert [t.text for t in story] == ROWS[:2]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b"  \n\t\n", "whitespace"),
        ("blank.jsonl", b"\n\n", "empty"),
        ("empty.parquet", b"", "empty"),
        ("binary.txt", b"PK\x03\x04\x00\x00binary", "binary"),
        ("latin1.csv", "text\ncaf\u00e9 au lait.\n".encode("latin-1"), "not UTF-8"),
        ("broken.parquet", b"not parquet at all", "parquet"),
        ("broken.jsonl", b'{"text": "a"}\n{oops', "not valid JSON"),
    ],
)
def test_local_bad_files(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(CramError, match=message) as info:
        LocalFiles(str(tmp_path / name)).texts(None, 0)
    assert name in str(info.value) and "\n" not in str(info.value)


def test_a_directory_gives_only_its_text_and_table_files(tmp_path: Path) -> None:
    """Code next to the books is not data: a .py or .pkl file is never opened, and Python
    source inside a .txt is a text like any other."""
    books = tmp_path / "books"
    books.mkdir()
    (books / "setup.py").write_text("print('hello')\n")
    (books / "rows.pkl").write_bytes(b"\x80\x04K\x01.")
    (books / "code.txt").write_text("import os. os.system('ls'). Done.")
    texts = LocalFiles(str(books), chunk=False).texts(None, 0)
    assert [t.id for t in texts] == ["code.txt"] and "os.system" in texts[0].text


def test_local_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(CramError, match="matches no"):
        LocalFiles(str(tmp_path / "missing" / "*.txt"))
    with pytest.raises(CramError, match="matches no"):
        LocalFiles(str(tmp_path))  # an empty directory
    (tmp_path / "notes.md").write_text("Some notes.")
    with pytest.raises(CramError, match="unsupported extension '.md'"):
        LocalFiles(str(tmp_path / "notes.md"))
    (tmp_path / "book.txt").write_text("A short book. It ends here.")
    source = LocalFiles(str(tmp_path))  # a directory skips what it cannot read
    assert source.texts(None, 0) == [SourceText("book.txt#0", "It ends here.")]


# --- Hugging Face datasets --------------------------------------------------------------------


def test_hf_offline_says_what_to_do(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    source = HFDataset("cram-harness-tests/no-such-dataset")
    with pytest.raises(CramError, match="--data-files") as info:
        source.texts(2, 0)
    assert "cram-harness-tests/no-such-dataset" in str(info.value)


def test_hf_rows_and_books(monkeypatch) -> None:
    import datasets

    rows = {"text": ["One. Two. Three. Four.", "", "Alpha beta. Gamma."], "id": [0, 1, 2]}
    calls = []

    def fake_load(repo, config, split):
        calls.append((repo, config, split))
        return datasets.Dataset.from_dict(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    texts = HFDataset("org/chunks").texts(None, 0)
    assert calls == [("org/chunks", None, "test")]
    assert texts == [SourceText("org/chunks#0", "Three. Four."),
                     SourceText("org/chunks#2", "Gamma.")]
    whole = HFDataset("org/chunks", take_second_half=False).texts(1, 0)
    assert whole == [SourceText("org/chunks#0", "One. Two. Three. Four.")]
    books = HFDataset("org/books", split="validation", chunk=True, min_words=1, max_words=1)
    assert [t.id for t in books.texts(None, 0)] == ["org/books#0.0", "org/books#0.1",
                                                    "org/books#0.2", "org/books#0.3",
                                                    "org/books#2.0", "org/books#2.1"]
    with pytest.raises(CramError, match="no column 'story'; its columns are: text, id"):
        HFDataset("org/chunks", column="story").texts(None, 0)
    json.dumps(books.describe())


# --- random words and the registry ------------------------------------------------------------


def test_random_words() -> None:
    import wordfreq

    source = RandomWords(num_words=50, vocab_size=1000)
    texts = source.texts(5, seed=3)
    assert [t.id for t in texts] == [f"random#{i}" for i in range(5)]
    assert all(len(t.text.split()) == 50 for t in texts)
    assert source.texts(5, seed=3) == texts  # reproducible
    assert source.texts(2, seed=3) == texts[:2]  # sample i does not depend on the limit
    assert source.texts(5, seed=4) != texts
    assert len({t.text for t in texts}) == 5
    vocab = set(wordfreq.top_n_list("en", 1000))
    assert all(w in vocab for t in texts for w in t.text.split())
    assert len(RandomWords(num_words=3).texts(None, 0)) == 100
    json.dumps(source.describe())


def test_the_shipped_novels_are_natural_text_with_their_provenance():
    from cram_harness.data import NOVELS, BundledNovels

    source = make_source("gutenberg")
    assert isinstance(source, BundledNovels)
    texts = source.texts(None, 0)
    books = {t.id.split("#")[0] for t in texts}
    assert len(books) == 3 and len(texts) == 15
    assert [t.id.split("#")[0] for t in texts[:3]] == sorted(books)  # one of each book first
    assert all(len(t.text.split()) > 5000 for t in texts)  # halves of 12k-25k-word chunks
    provenance = (NOVELS / "PROVENANCE.md").read_text()
    for book in books:
        assert book in provenance
        body = (NOVELS / book).read_text()
        assert "Gutenberg" not in body and "*** START" not in body  # licence and header gone
    assert source.describe()["provenance"].endswith("PROVENANCE.md")


def make_source(kind: str, **options):
    return registry.make_source({"kind": kind, **options})


def test_make_source() -> None:
    assert set(SOURCES) == {"local", "hf", "random", "gutenberg"}
    source = make_source("random", num_words=4)
    assert isinstance(source, RandomWords) and len(source.texts(1, 0)[0].text.split()) == 4
    with pytest.raises(CramError, match="unknown data source 'lcoal': did you mean local"):
        make_source("lcoal", path=".")
    with pytest.raises(CramError, match="no option 'colum'.*did you mean 'column'"):
        make_source("local", path=".", colum="text")
    with pytest.raises(CramError, match="needs the option 'path'"):
        make_source("local")
