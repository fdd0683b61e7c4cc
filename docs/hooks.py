"""MkDocs hooks: pages written from the code when the site is built. The configuration reference
comes from the config schema and the outputs' from the table of paths (augcache.jobs.reference);
the development page includes ARCHITECTURE.md; so each is written in one place."""

from __future__ import annotations

import re
from pathlib import Path


def _include(path: Path) -> str:
    """A Markdown file of the checkout, its headings one level down (its title becomes a section);
    lines of fenced code are left as they are."""
    lines, fenced = [], False
    for line in path.read_text().splitlines():
        fenced = fenced != line.startswith("```")
        lines.append("#" + line if not fenced and re.match(r"#+ ", line) else line)
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown, page, config, files):
    from augcache.jobs.reference import config_reference, outputs_reference

    root = Path(config["config_file_path"]).parent
    if "<!-- config reference -->" in markdown:
        markdown = markdown.replace("<!-- config reference -->", config_reference())
    if "<!-- outputs reference -->" in markdown:
        markdown = markdown.replace("<!-- outputs reference -->", outputs_reference())
    for name in re.findall(r"<!-- include (\S+) -->", markdown):
        markdown = markdown.replace(f"<!-- include {name} -->", _include(root / name))
    return markdown
