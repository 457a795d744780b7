"""The Makefile explains itself and agrees with the README and with .pre-commit-config.yaml.

Every target says what it does (``## ...``, which ``make help`` lists), is phony and is in the README; the
pre-commit hooks run exactly the commands of ``make lint``, so the two cannot drift apart.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MAKEFILE = (ROOT / "Makefile").read_text()
README = (ROOT / "README.md").read_text()
TARGET = re.compile(r"^([a-zA-Z_-]+):(?!=)(.*)$", re.M)


def targets():
    """{target: its ``## `` description, or None} of every rule with a plain name (not ``$(STAMP)``)."""
    return {name: (rest.split("## ", 1)[1].strip() if "## " in rest else None) for name, rest in TARGET.findall(MAKEFILE)}


def phony():
    text = re.search(r"^\.PHONY:((?:.*\\\n)*.*)$", MAKEFILE, re.M).group(1)
    return set(text.replace("\\\n", " ").split())


def recipe(target):
    """The recipe lines of ``target``, with ``$(VENV)`` as the Makefile sets it by default."""
    venv = re.search(r"^VENV\s*\?=\s*(\S+)", MAKEFILE, re.M).group(1)
    lines = MAKEFILE.split(f"\n{target}:", 1)[1].split("\n")[1:]
    commands = []
    for line in lines:
        if not line.startswith("\t"):
            break
        commands.append(line.strip().replace("$(VENV)", venv))
    return commands


def test_every_target_says_what_it_does_and_is_phony():
    found = targets()
    assert {"setup", "help", "lint", "format", "test"} <= set(found)
    assert [name for name, description in found.items() if not description] == []
    assert sorted(set(found) - phony()) == []
    assert sorted(phony() - set(found)) == []


def test_the_default_goal_is_still_setup():
    assert re.search(r"^\.DEFAULT_GOAL\s*:=\s*setup\s*$", MAKEFILE, re.M)
    assert next(iter(targets())) == "setup"  # also the first rule, as it always was


def test_the_readme_names_every_target():
    development = README.split("## Development", 1)[1]
    assert "make help" in development and "make format" in development
    missing = [name for name in targets() if not re.search(rf"\bmake {re.escape(name)}\b(?!-)", README)]
    assert missing == []


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_help_lists_every_target_with_its_description():
    output = subprocess.run(["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    listed = dict(line.split(None, 1) for line in output.stdout.strip().splitlines())
    assert listed == targets()


def test_format_fixes_what_lint_checks_with_the_same_tools():
    assert recipe("format") == [".venv/bin/ruff check --fix .", ".venv/bin/ruff format ."]


def test_the_pre_commit_hooks_run_exactly_what_make_lint_runs():
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]  # nothing to clone: works offline
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    tools = [hook for hook in hooks if hook["language"] == "system"]
    assert [hook["entry"] for hook in tools] == recipe("lint")
    assert all(hook["pass_filenames"] is False for hook in tools)  # the whole tree, as make lint checks it
    assert {hook["language"] for hook in hooks} <= {"system", "pygrep"}  # nothing pre-commit must install


def test_gitignore_lists_each_pattern_once():
    patterns = [line for line in (ROOT / ".gitignore").read_text().splitlines() if line and not line.startswith("#")]
    assert sorted({p for p in patterns if patterns.count(p) > 1}) == []
