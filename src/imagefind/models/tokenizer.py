"""CLIP text tokenisation from ``textual/tokenizer.json`` with the `tokenizers` library."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from imagefind.errors import ModelError, QueryError


class ClipTokenizer:
    """Pads and truncates to the context length; tokenizers' truncation leaves room for the
    post-processor's special tokens, so a truncated text still ends in end-of-text, where
    CLIP pools."""

    def __init__(self, path: Path, context_length: int, pad_token: str) -> None:
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises plain Exception on bad files
            raise ModelError(f"{path}: not a valid tokenizer.json ({exc})") from exc
        pad_id = tok.token_to_id(pad_token)
        if pad_id is None:
            raise ModelError(
                f"{path}: pad token {pad_token!r} is not in the vocabulary; set 'pad_token' in "
                f"{path.with_name('tokenizer_config.json')} to a token tokenizer.json has"
            )
        tok.enable_padding(length=context_length, pad_id=pad_id, pad_token=pad_token)
        tok.enable_truncation(max_length=context_length)
        self._tok = tok
        self.context_length = context_length
        self.pad_id = pad_id

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids int32 [N, context] and the real length of each row."""
        ids, mask = self.encode_masked(texts)
        return ids, mask.sum(axis=1).astype(np.int64)

    def encode_masked(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, both int32 [N, context] (1 for real tokens)."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise QueryError(f"text #{i} is {type(text).__name__}, not a string")
        encodings = self._tok.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int32).reshape(len(texts), -1)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int32).reshape(ids.shape)
        return ids, mask
