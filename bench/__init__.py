"""Benchmarks of issue 9 against the local cluster; run from the repository root: `python -m bench.<name> --help`."""
