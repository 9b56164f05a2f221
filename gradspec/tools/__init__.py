"""Tools built on checks: fuzzing, sweeps, mutation testing."""
