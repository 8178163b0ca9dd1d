"""Errors that reach the user as one line naming the problem and the fix."""


class ReproError(Exception):
    """A problem the user can fix; the CLI prints it without a traceback and exits 2."""


class ConfigError(ReproError):
    """A bad override or config, found before any work starts."""


class DataUnavailableError(ReproError):
    """A data set needed for scale=paper is missing and cannot be downloaded."""


class NonFiniteError(ReproError):
    """Training produced NaN or inf; the message names the unit, epoch and step."""
