"""The BatcherError tree and the exit code of each error. Nothing here prints."""

from __future__ import annotations

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3
EXIT_INTERNAL = 4  # an unexpected error (a bug): the results and the summary are still written
EXIT_INTERRUPTED = 130


class BatcherError(Exception):
    """Base of every error a user can cause or meet; str(err) is written for the user."""

    exit_code = 1


class NothingToDo(BatcherError):
    """The input holds no row at all (a header only): a quiet day, not a failure; the front-ends say it without
    "error"."""

    exit_code = EXIT_OK


class UsageError(BatcherError):
    """A bad option value or combination."""

    exit_code = EXIT_USAGE


class InputError(BatcherError):
    """The input file cannot be trusted: unreadable, wrong encoding, missing column."""

    exit_code = EXIT_USAGE


class UnclearColumns(InputError):
    """Which column holds a field cannot be told (two match it, or none does): the page asks, with --column's
    answer in mind. fields: the fields in question; header: the file's headers to choose from."""

    def __init__(self, message: str, *, fields: tuple[str, ...], header: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields
        self.header = header


class RunStopped(BatcherError):
    """The run cannot go on; rows not yet applied stay pending."""

    exit_code = EXIT_STOPPED


class AuthError(RunStopped):
    """401 or 403 that a token refresh cannot fix."""


class LoginError(RunStopped):
    """A login that did not complete: refused, expired, or the authorization server failed; nothing was saved."""


class QuotaError(RunStopped):
    """The daily request quota is used up."""


class WrongBaseUrl(RunStopped):
    """The base URL does not answer like the API (a web server's page instead of the API's JSON)."""


class OutputError(RunStopped):
    """The results file could not be written (full disk, no permission)."""


class JournalError(OutputError):
    """The journal could not be written: the run stops before a finished batch can be forgotten."""


class InternalError(RunStopped):
    """An error batcher did not foresee (a bug): the run stops, its results and summary are still written."""

    exit_code = EXIT_INTERNAL


def internal_error(exc: BaseException) -> InternalError:
    """The one wording of an unexpected error, for the user (the traceback goes to the log only)."""
    return InternalError(
        f"an unexpected error ({type(exc).__name__}: {str(exc)[:200]}); this is a bug in batcher. Whatever results "
        "file and summary the command writes are written (rows not known to be done stay pending: re-run with "
        "--resume); please report it with the log of a run with --log-file FILE -vv"
    )
