"""Which files an ingest run reads: only under its roots, no symlink out of them, a bounded number.

Free of pyspark: the Airflow operator checks a run's ``path`` with it before spark-submit.

Roots: a run started from Airflow reads only under the config's ``airflow.landing_dir``. The command line
reads under ``landing_dir`` and the folders listed in ``$SUMMARY_INGEST_ROOTS`` (separated by ``os.pathsep``);
when neither is set it reads any path (whoever runs spark-submit already has a shell on the host).
Every file is resolved (``realpath``) and must lie under a root, so a symlink that leaves the roots is refused,
named as it was given. Folders are walked without following symlinked sub-folders, and a run reads at most
``MAX_FILES`` files and looks at most ``MAX_WALK_ENTRIES`` entries. Object-store URIs are refused: a file is
hashed and checked on the submitting host before Spark reads it.
"""

import glob
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from spark_jobs.errors import SourceDataError
from spark_jobs.names import INGEST_ROOTS_ENV

FORMATS = {".parquet": "parquet", ".csv": "csv"}
MAX_FILES = 10_000  # files one ingest run may read
MAX_WALK_ENTRIES = 200_000  # entries (files and folders) one run may look at while expanding folders and globs
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_MAGIC = re.compile(r"[*?\[]")


def ingest_roots(landing_dir: str | None, environ: Mapping[str, str] | None = None) -> list[str] | None:
    """The command line's roots: ``landing_dir`` and ``$SUMMARY_INGEST_ROOTS``; None (any path) when neither is set."""
    env = os.environ if environ is None else environ
    roots = [landing_dir] if landing_dir else []
    roots += [root for root in env.get(INGEST_ROOTS_ENV, "").split(os.pathsep) if root.strip()]
    return roots or None


def _real(path: str | Path) -> Path:
    return Path(os.path.realpath(path))


def _inside(real: Path, roots: Sequence[Path]) -> bool:
    return any(real == root or real.is_relative_to(root) for root in roots)


def _glob_base(pattern: str) -> str:
    """The folder a glob starts from: its leading components without wildcards."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _MAGIC.search(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."


class _Budget:
    def __init__(self, max_files: int, max_entries: int) -> None:
        self.max_files, self.max_entries = max_files, max_entries
        self.files = self.entries = 0

    def add_file(self, arg: str) -> None:
        self.files += 1
        if self.files > self.max_files:
            raise SourceDataError(
                f"{arg}: more than {self.max_files} files; one ingest run reads at most {self.max_files} "
                "(give a sub-folder or a narrower glob)"
            )

    def look(self, arg: str, count: int = 1) -> None:
        self.entries += count
        if self.entries > self.max_entries:
            raise SourceDataError(
                f"{arg}: more than {self.max_entries} entries to look through; give a sub-folder or a narrower glob"
            )


def expand_paths(
    path_args: Iterable[str],
    roots: Sequence[str] | None = None,
    max_files: int = MAX_FILES,
    max_entries: int = MAX_WALK_ENTRIES,
) -> list[Path]:
    """The files named by ``--path`` arguments (files, folders and their .parquet/.csv files, globs), resolved.

    ``roots``: the folders every file must lie under once resolved (None: anywhere). Errors name each path as
    it was given (or as found in a folder given), never where a symlink points, nor anything in a file.
    """
    # a root given as a glob (landing_dir may be one) confines to the folder the glob starts from
    real_roots = None if roots is None else [_real(_glob_base(root) if _MAGIC.search(root) else root) for root in roots]
    if real_roots is not None and not real_roots:
        raise SourceDataError("no folder to ingest from: set airflow.landing_dir in the config")
    where = "" if roots is None else f" (ingest reads only under {', '.join(str(r) for r in roots)})"
    for root in roots or ():
        if _URI.match(root):
            raise SourceDataError(f"ingest root {root!r} is a URI; ingest reads local or mounted folders only")
    budget = _Budget(max_files, max_entries)
    files: list[Path] = []

    def refuse_outside(given: str | Path, real: Path, what: str) -> None:
        if real_roots is not None and not _inside(real, real_roots):
            raise SourceDataError(f"{given}: {what} outside the ingest folders; refused{where}")

    for arg in path_args:
        if _URI.match(arg):
            raise SourceDataError(
                f"{arg}: object-store URIs are not supported by ingest; copy the files to a folder the submitting "
                "host and every Spark worker can read (a shared mount under airflow.landing_dir)"
            )
        if _MAGIC.search(arg):
            base = _glob_base(arg)
            refuse_outside(arg, _real(base), "the glob starts")
            matches = []
            for match in glob.iglob(arg):
                budget.look(arg)
                matches.append(match)
            matches.sort()
            if not matches:
                raise SourceDataError(f"{arg}: no such file or directory")
        else:
            matches = [arg]
        for match in matches:
            p = Path(match)
            real = _real(p)
            if p.is_dir():
                refuse_outside(p, real, "a folder")
                inside = []
                for folder, dirs, names in os.walk(p, followlinks=False):
                    budget.look(str(p), len(dirs) + len(names))
                    dirs.sort()
                    for name in sorted(names):
                        if Path(name).suffix.lower() in FORMATS:
                            inside.append(Path(folder, name))
                if not inside:
                    raise SourceDataError(f"{p}: directory holds no .parquet or .csv file")
                for f in inside:
                    files.append(_checked_file(f, refuse_outside))
                    budget.add_file(str(p))
            elif p.exists():
                files.append(_checked_file(p, refuse_outside))
                budget.add_file(str(p))
            else:
                raise SourceDataError(f"{p}: no such file or directory")
    return files


def _checked_file(p: Path, refuse_outside: Callable[[str | Path, Path, str], None]) -> Path:
    if p.suffix.lower() not in FORMATS:
        raise SourceDataError(f"{p}: unsupported file type {p.suffix!r}; expected .parquet or .csv")
    real = _real(p)
    refuse_outside(p, real, "a file that resolves")
    if not real.is_file():
        raise SourceDataError(f"{p}: not a regular file")
    if real.suffix.lower() != p.suffix.lower():
        raise SourceDataError(f"{p}: a symlink to a file that is not {p.suffix}; refused")
    return real
