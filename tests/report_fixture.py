"""Reports rendered from inputs kept in tests/data/report/<name>/ (what make_report read in a demo
run of the shared full, fine-tune and sweep configs), and the text a reader sees on the page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

FIXTURES = Path(__file__).parent / "data" / "report"
NAMES = ("full", "finetune", "sweep")


class _Text(HTMLParser):
    """The page's visible text: what is not markup, scripts or styles."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._hidden = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(page: str) -> str:
    """The words of an HTML page a reader sees, one space between them."""
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", " ".join(parser.parts)).strip()


def render(name: str, out: Path) -> Path:
    """Render the report of fixture `name` into the folder out, as the make_report rule does."""
    from augcache.data.dataset import read_index
    from augcache.report.page import write_report

    root = FIXTURES / name
    kept = json.loads((root / "inputs.json").read_text())
    inputs = kept["inputs"]
    variants = {key.removeprefix("variant_"): [str(root / p) for p in value]
                for key, value in inputs.items() if key.startswith("variant_")}
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    write_report(
        [str((root / p).parent) for p in inputs["summaries"]],
        kept["store_attrs"],
        kept["config"],
        html,
        out_table=out / "modes.csv",
        out_curves=out / "curves.png",
        out_sweep=out / "sweep.png",
        skipped=read_index(root / inputs["skipped"]),
        selection=json.loads((root / inputs["selection"]).read_text()),
        sweep_table=pd.read_csv(root / inputs["sweep"]),
        test_scores=json.loads((root / inputs["test"]).read_text()) if "test" in inputs else None,
        variants=variants,
        base_info=json.loads((root / inputs["base"]).read_text()),
        benchmarks_root=root,
        extraction_groups=kept["extraction_groups"],
    )
    return html
