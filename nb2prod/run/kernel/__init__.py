"""Stdlib-only code sent into the user's kernel as cell source; never imported by the host (Python >= 3.9)."""
