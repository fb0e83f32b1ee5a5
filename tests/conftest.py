"""Shared test setup: hypothesis profiles, an isolated config folder, Qt offscreen."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _isolated_config(tmp_path_factory, monkeypatch):
    """Every test gets its own MASSAGECTL_CONFIG_DIR: never the user's real config."""
    monkeypatch.setenv("MASSAGECTL_CONFIG_DIR", str(tmp_path_factory.mktemp("config")))
