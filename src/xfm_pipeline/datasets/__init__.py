"""Kedro datasets of this project."""

from xfm_pipeline.datasets.checkpoint_dataset import XFMCheckpointDataset
from xfm_pipeline.datasets.directory_dataset import DirectoryDataset

__all__ = ["DirectoryDataset", "XFMCheckpointDataset"]
