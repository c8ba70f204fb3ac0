"""Kedro datasets of this project."""

from xfm_pipeline.datasets.checkpoint_dataset import XFMCheckpointDataset
from xfm_pipeline.datasets.directory_dataset import DirectoryDataset
from xfm_pipeline.datasets.json_dataset import OptionalJSONDataset

__all__ = ["DirectoryDataset", "OptionalJSONDataset", "XFMCheckpointDataset"]
