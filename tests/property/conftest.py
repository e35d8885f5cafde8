"""Property tests of every parser of external data: one deterministic, bounded Hypothesis profile."""

from hypothesis import HealthCheck, settings

# Derandomized: the same examples on every run and every machine. The whole suite stays under a minute.
settings.register_profile(
    "updraft-properties",
    derandomize=True,
    deadline=None,
    max_examples=150,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile("updraft-properties")
