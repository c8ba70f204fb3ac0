"""xfm-pipeline: X-FM as a reproducible Kedro project."""

__version__ = "0.1"
