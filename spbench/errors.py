"""The one base class of errors caused by the user's input rather than by spbench itself.

The command line prints such an error as one clear line and exits with status 2; any other
exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad configuration, data, file or environment; the message says what to do."""
