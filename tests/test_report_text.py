"""The report's words and numbers, rendered from kept inputs, against the text a reader is known to
see (tests/data/report/<name>/visible.txt): a change of the page's wording or numbers shows here,
and is made on purpose by writing the new text there. The kept inputs are those of an earlier
version (no macro-averaged accuracy, test scores without per-class recall), so this also checks
that such a run's report still renders."""

import pytest

from report_fixture import FIXTURES, NAMES, render, visible_text


@pytest.mark.parametrize("name", NAMES)
def test_report_text_is_kept(name, tmp_path):
    page = render(name, tmp_path).read_text()
    expected = (FIXTURES / name / "visible.txt").read_text().strip()
    assert visible_text(page) == expected
