"""User-facing errors: one clear line saying what was wrong and what to do."""


class CramError(Exception):
    """Bad input or environment. The CLI prints the message alone and exits with code 2."""

    exit_code = 2
