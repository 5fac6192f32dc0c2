"""Domain rules: no HTTP, no SQL."""
