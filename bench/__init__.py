"""Benchmarks of oc-tui's data paths against OpenSSH doing the same work (see bench/README.md)."""
