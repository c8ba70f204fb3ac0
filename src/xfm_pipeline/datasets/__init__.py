"""Kedro datasets of this project."""

from xfm_pipeline.datasets.checkpoint_dataset import XFMCheckpointDataset
from xfm_pipeline.datasets.directory_dataset import DirectoryDataset
from xfm_pipeline.datasets.json_dataset import OptionalJSONDataset
from xfm_pipeline.datasets.run_id_dataset import MlflowRunIdDataset
from xfm_pipeline.datasets.shards_dataset import WebDatasetShards

__all__ = ["DirectoryDataset", "MlflowRunIdDataset", "OptionalJSONDataset", "WebDatasetShards", "XFMCheckpointDataset"]
