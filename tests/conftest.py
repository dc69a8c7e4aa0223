"""Shared test configuration: hypothesis profiles and the pytester fixture."""

import os

from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

# "ci" (the default) is quick and reproducible; "thorough" searches ten times longer:
#   RNNSPEC_HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_fuzz_equivalence.py
settings.register_profile(
    "ci", max_examples=50, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "thorough", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("RNNSPEC_HYPOTHESIS_PROFILE", "ci"))
