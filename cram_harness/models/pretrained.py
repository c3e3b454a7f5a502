"""Loading a folder saved with save_pretrained (or a Hub repo) through transformers, without
the progress bars that would bury the run's own."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def quiet(all_of_stderr: bool = False) -> Iterator[None]:
    """No progress bars from transformers while a model loads (a bar per load would bury the
    run's own progress; the Hub's download bars stay). Converting a GGUF also sends the rest
    of stderr to a buffer: the GGUF reader's plain tqdm bars obey no switch."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()) if all_of_stderr \
                else contextlib.nullcontext():
            yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def from_pretrained(source: str, dtype: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder or a Hub repo, the weights in `dtype`."""
    import transformers
    from packaging.version import Version
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # `dtype` since 4.56; before it, `torch_dtype` (and `dtype` reached the model's __init__)
    spelling = "dtype" if Version(transformers.__version__) >= Version("4.56") else "torch_dtype"
    with quiet():
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source, **{spelling: dtype}, **kwargs)
    return model, tokenizer
