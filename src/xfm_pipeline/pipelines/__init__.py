"""Kedro pipelines: wiring only; the work happens in the packages they call."""
