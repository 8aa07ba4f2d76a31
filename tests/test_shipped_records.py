"""The records that ship in companion/pretrained/records/ and their one reader."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from companion.pretrained import load_record, record_names


def test_every_record_is_read_from_the_package():
    names = record_names()
    assert {"gan", "evaluation", "vae_nll", "dcgan_training", "notebooks"} <= set(names)
    folder = resources.files("companion.pretrained") / "records"
    for name in names:
        assert load_record(name) == json.loads((folder / f"{name}.json").read_text())


@pytest.mark.parametrize("name", ["gan.json", "../pyproject", "", "records/gan", 3])
def test_a_bad_name_says_which_names_exist(name):
    with pytest.raises(ValueError, match="is not a record name; use one of .*'gan'"):
        load_record(name)


def test_a_missing_record_says_which_names_exist():
    with pytest.raises(FileNotFoundError, match="no shipped record named 'nope'.*'vae_nll'"):
        load_record("nope")
