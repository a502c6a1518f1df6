"""Token ids equal transformers' CLIPTokenizer with CLIP's real vocabulary."""

from __future__ import annotations

import numpy as np
import pytest

from imagefind.errors import QueryError
from imagefind.models import ClipModel

TRICKY = [
    "a photo of a cat",
    "",
    " ",
    "A Photo Of A CAT",
    "Café crème, naïve façade — déjà vu!",
    "Ångström Øresund ßtraße İstanbul",
    "emoji 🐶🚗🎉 and flags 🇫🇷",
    "don't won't it's we're they've I'm you'll he'd",
    "hello,world...wow!!! (parens) [brackets] {braces} <angle>",
    "repeated     whitespace\t\ttabs\nnewlines",
    "numbers 12345 3.14159 1e10 #hashtag @mention",
    "日本語のテキストと中文和한국어",
    "word " * 100,
    "supercalifragilisticexpialidocious " * 30,
    "<|startoftext|> literal special tokens <|endoftext|>",
    "mixed-case-hyphenated_words and CamelCaseWords",
]


@pytest.mark.parametrize("text", TRICKY)
def test_ids_match_reference(tiny_model: ClipModel, reference, text: str) -> None:
    _, tokenizer, _ = reference
    ref = tokenizer([text], padding="max_length", max_length=77, truncation=True)["input_ids"][0]
    ids, lengths = tiny_model.tokenizer.encode([text])
    assert ids.dtype == np.int32 and ids.shape == (1, 77)
    assert ids[0].tolist() == ref
    assert ids[0, 0] == 49406  # start of text
    assert ids[0, lengths[0] - 1] == 49407  # the last real token is end-of-text


def test_long_text_is_truncated_ending_in_eot(tiny_model: ClipModel) -> None:
    ids, lengths = tiny_model.tokenizer.encode(["word " * 300])
    assert lengths[0] == 77 and ids[0, -1] == 49407


def test_rejects_non_strings(tiny_model: ClipModel) -> None:
    with pytest.raises(QueryError, match="text #1"):
        tiny_model.tokenizer.encode(["ok", 3])  # type: ignore[list-item]
