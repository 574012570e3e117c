"""The matcher's own exceptions, so callers (CLI, API) can map each to a clear message.

Hierarchy::

    MatcherError
    ├── InvalidInput            bad data from outside; never carries the submitted value
    │   ├── InvalidProfile      a patient profile breaks the contract
    │   ├── InvalidActivity     a catalogue record breaks the contract
    │   ├── InvalidUptake       an uptake record breaks the contract
    │   └── UnknownPostcode     a postcode not in the shipped table
    ├── CatalogueError          a catalogue file cannot be read at all
    ├── PullError               a pull from an Open Referral UK API failed; ``current`` is as it was
    ├── UnknownActivity         an activity id that is not in the catalogue
    └── ModelError              a model folder cannot be loaded or trusted
"""

from __future__ import annotations


class MatcherError(Exception):
    """Base class for every error the matcher raises on purpose."""


class InvalidInput(MatcherError, ValueError):
    """Input from outside breaks the contract.

    ``problems`` is a list of ``(field_path, expected)`` pairs. Messages never
    include the submitted value: profiles hold health data.
    """

    def __init__(self, problems: list[tuple[str, str]] | str, where: str = ""):
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems = problems
        self.where = where
        super().__init__(self._message())

    def _message(self) -> str:
        parts = [f"{path}: {expected}" if path else expected for path, expected in self.problems]
        text = "; ".join(parts)
        return f"{self.where}: {text}" if self.where else text

    def located(self, where: str) -> InvalidInput:
        """Return the same error, prefixed with a place such as ``file.jsonl line 3``."""
        return type(self)(self.problems, where)


class InvalidProfile(InvalidInput):
    """A patient profile breaks the contract (unknown field, wrong type, unknown postcode)."""


class InvalidActivity(InvalidInput):
    """A catalogue record breaks the contract."""


class InvalidUptake(InvalidInput):
    """An uptake record breaks the contract."""


class UnknownPostcode(InvalidInput):
    """A postcode, full or partial, that the shipped postcode table does not know."""


class CatalogueError(MatcherError):
    """A catalogue file cannot be read at all (missing, not JSON, no activities)."""


class PullError(MatcherError):
    """A pull from an Open Referral UK API failed, was partial or came back empty; the message is
    one line saying why, and the catalogue folder's ``current`` was left as it was."""


class UnknownActivity(MatcherError, KeyError):
    """An activity id that is not in the loaded catalogue."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown activity"


class ModelError(MatcherError):
    """A model folder is missing, corrupt, tampered with, or holds untrusted types."""
