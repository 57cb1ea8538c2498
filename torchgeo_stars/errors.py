"""Exceptions raised by torchgeo-stars.

Every error a user can cause (a bad file, a missing modality, a wrong band
count) is raised as a subclass of :class:`STARSError`, with a message that names
the file, modality or parameter at fault and says what to do. The command line
prints such errors as one line and exits with a non-zero status.
"""


class STARSError(Exception):
    """Base class of the errors a user can cause and fix.

    .. versionadded:: 0.1
    """


class DataError(STARSError, ValueError):
    """Input rasters are missing, unreadable, inconsistent or do not overlap.

    .. versionadded:: 0.1
    """


class ConfigurationError(STARSError, ValueError):
    """Parameters or a checkpoint do not match the data or each other.

    .. versionadded:: 0.1
    """


class DataWarning(UserWarning):
    """Input data the command can work around, but the user should know of.

    The command line prints it as one line, like an error, and goes on.

    .. versionadded:: 0.1
    """
