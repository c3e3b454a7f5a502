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


# What to do about an operating-system error, by errno: the CLI's one boundary for them.
_OS_ADVICE = {
    "ENOSPC": "the disk is full: free space and rerun the same command to resume; finished "
              "samples are kept",
    "EDQUOT": "the disk quota is used up: free space and rerun the same command to resume; "
              "finished samples are kept",
    "EACCES": "permission denied: give yourself access to it, or choose another path",
    "EPERM": "the operation is not permitted there: choose another path",
    "EROFS": "the file system is read-only: choose a writable path",
    "ENOENT": "it does not exist (or is a symlink to nothing): check the path",
    "ENOTDIR": "a part of the path is a file, not a directory: check the path",
    "EISDIR": "it is a directory where a file was expected: name a file",
    "EFBIG": "the file would grow past the file system's size limit: write somewhere else",
    "ENAMETOOLONG": "the name is too long for the file system: choose a shorter path",
    "ELOOP": "the path's symlinks loop: check the path",
    "EMFILE": "too many files are open: raise the limit (ulimit -n) and rerun",
}


def os_error_line(exc: OSError) -> str:
    """One line for an OSError: the path, what failed and what to do."""
    import errno
    import os

    name = errno.errorcode.get(exc.errno or 0, "")
    what = exc.strerror or str(exc)
    where = " -> ".join(os.fsdecode(p) for p in (exc.filename, exc.filename2) if p)
    advice = _OS_ADVICE.get(name, "check the path and rerun (--debug shows the traceback)")
    return f"{where}: {what} ({advice})" if where else f"{what} ({advice})"
