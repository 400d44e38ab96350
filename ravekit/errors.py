"""The one exception type whose message is meant for the user."""


class RavekitError(Exception):
    """An error the user can fix; its message names the file, the problem and the fix.

    Scripts print it as one line on stderr and exit with ``exit_code``
    (2 for a wrong command line, 1 for everything else).
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
