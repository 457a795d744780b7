"""The project's own exception types: each carries a message a data engineer can act on."""


class PipelineError(Exception):
    """Base class of every error the pipeline raises on purpose."""


class ConfigError(PipelineError):
    """A config file is invalid. The message names the file and the key path of each problem."""

    def __init__(self, path, problems):
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
