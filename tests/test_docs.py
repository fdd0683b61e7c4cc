"""The documentation: the configuration reference written from the schema, the site built with
``mkdocs build --strict``, the tutorial's code blocks run, and the site opened in headless Chromium."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from augcache.jobs.reference import config_readme, config_reference, keys, load_schema, undescribed
from conftest import ROOT
TUTORIAL = ROOT / "docs" / "tutorial.md"


def block(page: Path, marker: str, language: str) -> str:
    """The code block of a page that follows ``<!-- marker -->``."""
    found = re.search(rf"<!-- {marker} -->\s*```{language}\n(.*?)```", page.read_text(), re.S)
    assert found, f"{page.relative_to(ROOT)} has no {language} block after <!-- {marker} -->"
    return found.group(1)


def build_site(docs: Path, out: Path, config: Path = ROOT / "mkdocs.yml") -> subprocess.CompletedProcess:
    """mkdocs build --strict of `docs` into `out`, with the checkout's mkdocs.yml."""
    site_config = out.parent / "mkdocs.yml"
    text = config.read_text().replace("docs_dir: docs", f"docs_dir: {docs}").replace(
        "  - docs/hooks.py", f"  - {docs / 'hooks.py'}")
    # the hooks find ARCHITECTURE.md beside the config file
    site_config.write_text(text)
    shutil.copy(ROOT / "ARCHITECTURE.md", out.parent / "ARCHITECTURE.md")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(site_config), "-d", str(out)],
                          capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_every_config_key_has_a_description_and_a_row_in_the_reference():
    schema = load_schema()
    assert undescribed(schema) == []
    reference = config_reference(schema)
    for name, _ in keys(schema):
        top, _, rest = name.partition(".")
        assert (f"| `{rest}` |" if rest else f"## `{top}`") in reference, name
    # a key added without a description is found
    schema["properties"]["head"]["properties"]["new_key"] = {"type": "integer", "default": 1}
    assert undescribed(schema) == ["head.new_key"]


def test_the_reference_gives_each_keys_type_and_default():
    reference = config_reference()
    assert "| `k` | integer | `5` |" in reference
    assert "| `dtype` | one of `float16`, `float32`, `uint8` | `float16` |" in reference
    assert "| `knn.k` | integer | — |" in reference
    assert "| `memory_budget_mb` | number or `auto` | `auto` |" in reference


def test_every_path_of_the_workflow_is_described_in_the_outputs_reference():
    from augcache.core import paths
    from augcache.jobs.reference import outputs_reference

    patterns = {getattr(paths, name) for name in paths.__all__}
    assert patterns <= set(paths.OUTPUTS), patterns - set(paths.OUTPUTS)
    assert all(what.strip() for what in paths.OUTPUTS.values())
    table = outputs_reference()
    assert all(f"| `{pattern}` |" in table for pattern in paths.OUTPUTS)


def test_config_readme_is_the_reference_written_from_the_schema():
    assert (ROOT / "config" / "README.md").read_text() == config_readme(), \
        "config/README.md is out of date: python -m augcache.jobs.reference > config/README.md"


def test_the_site_builds_strictly_with_the_reference_and_the_architecture(tmp_path):
    out = tmp_path / "site"
    result = build_site(ROOT / "docs", out)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (out / "reference" / "configuration" / "index.html").read_text()
    for name in load_schema()["properties"]:
        assert f'id="{name}"' in page, name
    assert "<!-- config reference -->" not in page
    outputs = (out / "reference" / "outputs" / "index.html").read_text()
    assert "<!-- outputs reference -->" not in outputs and "results/{repeat_dir}features/train/epoch_{epoch}.h5" in outputs
    development = (out / "development" / "index.html").read_text()
    assert "Where to add" in development and "<!-- include" not in development
    assert not (out / "hooks.py").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "index.md").write_text((docs / "index.md").read_text() + "\n[gone](concepts/no-such-page.md)\n")
    result = build_site(docs, tmp_path / "site")
    assert result.returncode != 0
    assert "no-such-page.md" in result.stdout + result.stderr


def test_the_tutorials_config_and_estimate_run(tmp_path, tiny_data):
    config = yaml.safe_load(block(TUTORIAL, "tutorial config", "yaml"))
    config["data"]["dir"] = str(tiny_data)
    (tmp_path / "config").mkdir()
    shutil.copy(ROOT / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(config))
    command = shlex.split(block(TUTORIAL, "tutorial estimate", "bash").strip())
    assert command[0] == ".venv/bin/augcache"
    command[0] = str(Path(sys.executable).parent / "augcache")
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    # K = 10 epochs of each of the default two repeats, and the pixel store of the images
    assert result.stdout.count("features/train/epoch_") == 20
    assert "results/dataset/pixels.h5" in result.stdout


def test_the_tutorials_model_example_runs_on_a_finished_run(full_run):
    _, flow = full_run
    result = subprocess.run([sys.executable, "-c", block(TUTORIAL, "tutorial model", "python")], cwd=flow.root,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    classes = yaml.safe_load(flow.path("results/model/classes.json").read_text())["classes"]
    printed = yaml.safe_load(result.stdout.strip().splitlines()[-1])
    assert len(printed) == 2 and set(printed) <= set(classes)


CHROMIUM = Path("/usr/bin/chromium")
# as the machine's closed network needs: no request outside the page's own server
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium, installed when missing (as root, as the SLURM cluster is)."""
    if not CHROMIUM.exists():
        if os.geteuid() != 0:
            pytest.fail("the site's browser test needs Debian's chromium: apt-get install chromium (as root)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "-o", "DPkg::Lock::Timeout=300", "chromium"], check=True,
                       env=env, capture_output=True)
    return CHROMIUM


@pytest.fixture
def served_site(tmp_path):
    """The site, built and served on localhost; its address."""
    import functools
    import http.server
    import threading

    out = tmp_path / "site"
    result = build_site(ROOT / "docs", out)
    assert result.returncode == 0, result.stderr[-3000:]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def test_the_site_opens_in_a_browser_with_search_and_navigation(chromium, served_site):
    from playwright.sync_api import sync_playwright

    outside = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("request", lambda request: None if request.url.startswith(served_site) else outside.append(request.url))
        page.goto(served_site)
        assert page.title() == "augcache"
        # search: the index finds the pages that speak of a word, and a result opens its page
        page.locator("input.md-search__input").press_sequentially("manifest", delay=20)
        page.wait_for_selector(".md-search-result__item", timeout=20000)
        assert "matching document" in page.locator(".md-search-result__meta").inner_text()
        page.locator(".md-search-result__item a").first.click()
        page.wait_for_load_state()
        assert "manifest" in page.content().lower()
        # navigation: the reference's section, then a key's heading
        page.goto(served_site)
        page.locator("nav.md-nav--primary a", has_text="Configuration").first.click()
        page.wait_for_url("**/reference/configuration/")
        assert page.locator("h2#cache").is_visible()
        assert "Configuration - augcache" == page.title()
        browser.close()
    assert outside == []


def test_the_store_reference_names_every_dataset_and_attribute_a_store_has(full_run):
    import h5py

    _, flow = full_run
    page = (ROOT / "docs" / "reference" / "stores.md").read_text()
    named = set(re.findall(r"`([^`]+)`", page))
    for store in ("results/features/train/epoch_0.h5", "results/features/val.h5", "results/features/train.h5"):
        with h5py.File(flow.path(store)) as handle:
            fields = set(handle) | set(handle.attrs)
        unnamed = {f for f in fields - named if not f.endswith("_version")}
        assert not unnamed, f"{store}: docs/reference/stores.md does not name {sorted(unnamed)}"


def test_the_outputs_reference_names_every_field_of_a_runs_summary(full_run, folded, finetuned):
    page = (ROOT / "docs" / "reference" / "outputs.md").read_text()
    named = set(re.findall(r"`([^`]+)`", page))
    for _, flow in (full_run, folded, finetuned):
        for path in flow.path("results").rglob("summary.json"):
            fields = set(yaml.safe_load(path.read_text()))
            assert fields <= named, f"{path}: docs/reference/outputs.md does not name {sorted(fields - named)}"
