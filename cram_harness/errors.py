"""User-facing errors: one clear line saying what was wrong and what to do."""


class CramError(Exception):
    """Bad input or environment. The CLI prints the message alone and exits with code 2."""

    exit_code = 2


def _network_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean the Hub could not be reached (offline mode, no network,
    a repo that is not there or is gated), from the libraries that raise them."""
    kinds: list[type[BaseException]] = [ConnectionError, TimeoutError]
    try:
        from huggingface_hub import errors

        kinds += [errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError,
                  errors.RepositoryNotFoundError, errors.HfHubHTTPError]
    except ImportError:
        pass
    for module, name in (("requests", "RequestException"), ("httpx", "TransportError"),
                         ("datasets.exceptions", "DatasetNotFoundError")):
        try:
            kinds.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


def is_unreachable(exc: BaseException) -> bool:
    """Offline, network or not-found errors, by type: a disk error is not one of them."""
    return isinstance(exc, _network_errors())
