"""The documentation stays a map a newcomer can use: a short README that starts with the two
commands, and no link that points at a file that is not there."""
from __future__ import annotations

import re

from tests.paths import REPO

PAGES = [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "MODEL_CARD.md", *sorted((REPO / "docs").glob("*.md")),
         REPO / "configs" / "data" / "README.md"]


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 300
    sections = [line for line in lines if line.startswith("## ")]
    assert sections[0] == "## Two commands"


def test_every_relative_link_points_at_a_file():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)} -> {target}")
    assert not broken, "links to missing files:\n" + "\n".join(broken)


def test_the_architecture_page_names_every_subpackage():
    text = (REPO / "docs" / "architecture.md").read_text()
    packages = sorted(p.name for p in (REPO / "vidfake").iterdir() if (p / "__init__.py").is_file())
    missing = [name for name in packages if f"`{name}`" not in text and f"vidfake/{name}/" not in text]
    assert not missing, f"docs/architecture.md does not place: {missing}"
