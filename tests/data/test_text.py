"""Properties of text preparation, on generated inputs (hypothesis): sentence chunks never
split a sentence, sentence splitting loses nothing, Gutenberg cleaning keeps the story and
never the licence."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from cram_harness.data.text import (
    _ABBREVIATIONS,
    chunk_sentences,
    split_sentences,
    strip_gutenberg,
)
from tests.helpers import PROPERTY

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
