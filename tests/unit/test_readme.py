"""The README and docs/ stand on their own: every module is in the Layout, every link resolves inside the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def layout_block():
    section = README.split("## Layout", 1)[1]
    return section.split("```", 2)[1]


def test_every_module_is_in_the_readme_layout():
    block = layout_block()
    packages = ("spark_jobs", "summary_airflow")
    modules = [p for folder in packages for p in (ROOT / folder).rglob("*.py") if p.name != "__init__.py"]
    missing = [str(p.relative_to(ROOT)) for p in modules if not re.search(rf"\b{re.escape(p.name)}\b", block)]
    assert missing == []
    packages = {p.parent.name for p in modules if p.parent.name not in ("spark_jobs", "summary_airflow")}
    assert all(f"{name}/" in block for name in packages)


def test_links_stay_inside_the_repository_and_resolve():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
