"""Config keys spelled the former way (cache.epochs, train.sweep_epochs, cache.reuse) are read as
today's (cache.k, train.sweep_k, reuse), each with a note; both spellings at once with different
values are refused, naming both."""

import pytest
import yaml

from augcache.jobs.settings import Settings, load_config
from augcache.jobs.spellings import respell


def test_former_spellings_are_read_as_todays_with_a_note():
    config = {"cache": {"epochs": 3, "reuse": False, "dtype": "float32"}, "train": {"sweep_epochs": [2]},
              "variants": {"wide": {"cache": {"epochs": 7}}}}
    notes = respell(config)
    assert config == {"cache": {"k": 3, "dtype": "float32"}, "train": {"sweep_k": [2]}, "reuse": False,
                      "variants": {"wide": {"cache": {"k": 7}}}}
    assert len(notes) == 4
    assert "cache.epochs is now spelled cache.k" in notes[0] and "variants.wide.cache.epochs" in notes[3]
    assert respell(config) == []  # read once, nothing left to read


def test_a_key_spelled_both_ways_is_refused_naming_both():
    with pytest.raises(ValueError, match=r"cache\.epochs \(3\) and cache\.k \(5\) name one setting"):
        respell({"cache": {"epochs": 3, "k": 5}})
    config = {"cache": {"epochs": 5, "k": 5}}
    respell(config)
    assert config == {"cache": {"k": 5}}


def test_a_later_config_file_in_the_former_spelling_wins(tmp_path, caplog):
    """As with snakemake --configfile, the later file wins, whichever spelling each uses."""
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(yaml.safe_dump({"cache": {"k": 4}}))
    second.write_text(yaml.safe_dump({"cache": {"epochs": 6}, "train": {"sweep_epochs": [1]}}))
    config = load_config([first, second])
    assert config["cache"]["k"] == 6 and config["train"]["sweep_k"] == [1] and "epochs" not in config["cache"]
    assert Settings(config).k_values() == [1, 6]
    assert any("b.yaml: cache.epochs is now spelled cache.k" in r.getMessage() for r in caplog.records)
