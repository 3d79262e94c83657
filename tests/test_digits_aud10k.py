"""'²' is a digit to str.isdigit() and no number to int(): every reader of a number from text checks
ASCII digits (aud10k; the web sweep probes every route with it)."""

from __future__ import annotations

import pytest

from gridkit.config import Settings
from gridkit.errors import SetupError, ValidationError
from gridkit.io.export_features import EPSG_URI, crs_srid


def test_a_setting_of_other_digits_is_refused_in_a_sentence():
    # ValueError from int(): a traceback at start-up instead of the setting's message.
    with pytest.raises(SetupError):
        Settings.from_env({"GRIDKIT_OPEN311_RATE": "²"})


def test_a_crs_of_other_digits_is_refused():
    with pytest.raises(ValidationError):
        crs_srid(EPSG_URI.format("²"))
    assert crs_srid(EPSG_URI.format("4490"))[0] == 4490
