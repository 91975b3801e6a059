"""Reliability tests: hostile input, faults on the real components (see docs/RELIABILITY.md)."""
