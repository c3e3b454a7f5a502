"""Models from the Hugging Face Hub: whether it answers, loading from it (or its local cache
when it does not), and the commit the weights came from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from cram_harness.errors import CramError
from cram_harness.models.checks import first_line
from cram_harness.models.pretrained import from_pretrained


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub's host answers within `timeout` seconds. Without network the Hub
    client retries for about a minute, a line per retry; this asks once."""
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY",
                                       "http_proxy", "ALL_PROXY", "all_proxy")):
        return True  # through a proxy: the client knows the way, a direct probe does not
    try:
        socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout).close()
    except OSError:
        return False
    return True


def from_hub(repo: str, revision: str | None, dtype: Any, trust_remote_code: bool):
    from huggingface_hub import constants
    from safetensors import SafetensorError

    # No network: the Hub's local cache still serves, at once, instead of a minute of retries
    offline = bool(constants.HF_HUB_OFFLINE) or not hub_reachable()
    try:
        model, tokenizer = from_pretrained(repo, dtype, revision=revision,
                                            trust_remote_code=trust_remote_code,
                                            local_files_only=offline)
        model.cram_commit = snapshot_commit(repo, revision)
        return model, tokenizer
    except SafetensorError as exc:
        raise CramError(f"the Hub cache's copy of hf:{repo} is damaged or truncated "
                        f"({first_line(exc)}): delete it (`hf cache delete`) and download it "
                        "again") from exc
    except OSError as exc:  # offline, unreachable, unknown repo, gated: transformers raises OSError
        why = "the Hub is not reachable from here and it is not in the local Hub cache" \
            if offline else first_line(exc)
        raise CramError(
            f"could not load hf:{repo} from the Hugging Face Hub ({why}); "
            f"if you are offline, download it where you have network "
            f"(`hf download {repo} --local-dir DIR`) and pass --model DIR"
        ) from exc


def snapshot_commit(repo: str, revision: str | None) -> str | None:
    """The commit the weights came from, which an adapter records: the Hub cache names the
    snapshot folder by it (transformers 5 no longer keeps it on the config)."""
    from huggingface_hub import try_to_load_from_cache

    path = try_to_load_from_cache(repo, "config.json", revision=revision)
    return Path(path).parent.name if isinstance(path, str) else None
