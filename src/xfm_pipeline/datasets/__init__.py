"""Kedro datasets of this project."""

from xfm_pipeline.datasets.checkpoint_dataset import XFMCheckpointDataset

__all__ = ["XFMCheckpointDataset"]
