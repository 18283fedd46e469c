"""Hardening battery: bad input, broken upstreams, faults, secrets and fuzzing, against the
running gateway. `pytest tests/hardening --soak` (or AIBRIDGE_SOAK=1) runs the long version."""
