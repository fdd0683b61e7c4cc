"""The report's words and numbers, rendered from kept inputs, against the text a reader saw before
the page's markup moved to templates (tests/data/report/<name>/visible.txt)."""

import pytest

from report_fixture import FIXTURES, NAMES, render, visible_text


@pytest.mark.parametrize("name", NAMES)
def test_report_text_is_kept(name, tmp_path):
    page = render(name, tmp_path).read_text()
    expected = (FIXTURES / name / "visible.txt").read_text().strip()
    assert visible_text(page) == expected
