"""The project's own exception types: each carries a message a data engineer can act on."""

from collections.abc import Iterable
from pathlib import Path


def first_line(exc: BaseException, limit: int = 500) -> str:
    """The first line of an exception's message (a Spark error's own text, without the JVM stack)."""
    text = getattr(exc, "desc", None) or str(exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """A config file is invalid. The message names the file and the key path of each problem."""

    def __init__(self, path: str | Path, problems: Iterable[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  - {self.path}: {p}" for p in self.problems)
        super().__init__(f"invalid summary config {self.path} ({len(self.problems)} problem(s)):\n{lines}")


class SourceDataError(PipelineError):
    """An input file or source table does not fit what the config or the source table expects."""


class ConcurrentRunError(PipelineError):
    """Another run holds the tables; this run stopped before changing anything."""


class UsageError(PipelineError):
    """The command line asks for something the pipeline cannot do."""


class RuleViolations(PipelineError):
    """``--mode check`` found rows that break the table rules; the report lists which and where."""
