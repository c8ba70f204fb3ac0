"""NodeZeroOutputsHook: a Kedro run on a node other than 0 saves none of the outputs of its multi-node nodes."""

from __future__ import annotations

import logging

import pytest
from kedro.io import DataCatalog, DatasetError
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner  # imported before caplog: Kedro configures logging on import

from xfm_pipeline.hooks import NodeZeroOutputsHook
from xfm_pipeline.training.launch import OnNodeZero


def test_outputs_of_nodes_off_node_zero_are_not_saved_and_cannot_be_read(tmp_path, caplog):
    catalog = DataCatalog.from_config(
        {
            "train_metrics": {"type": "json.JSONDataset", "filepath": str(tmp_path / "train_metrics.json")},
            "eval_metrics": {"type": "json.JSONDataset", "filepath": str(tmp_path / "eval_metrics.json")},
        }
    )
    catalog["params:train"] = {"distributed": {"nnodes": 2, "node_rank": 1}}
    catalog["params:eval"] = {"distributed": {"node_rank": 0}}
    train = Node(lambda p: OnNodeZero(1, "runs"), inputs="params:train", outputs="train_metrics", name="train")
    single = Node(lambda p: {"acc": 0.5}, inputs="params:eval", outputs="eval_metrics", name="single_node_eval")
    NodeZeroOutputsHook().before_pipeline_run({}, Pipeline([train, single]), catalog)

    with caplog.at_level(logging.INFO, logger="xfm_pipeline"):
        SequentialRunner().run(Pipeline([train, single]), catalog)
    assert not (tmp_path / "train_metrics.json").exists()
    assert (tmp_path / "eval_metrics.json").exists()  # a node with node_rank 0 saves as always
    assert f"train_metrics: not saved on node 1; node 0 saves it to {tmp_path.resolve() / 'train_metrics.json'}" in caplog.text
    reader = Node(lambda m: m, inputs="train_metrics", outputs=None, name="reader")
    with pytest.raises(DatasetError, match="train_metrics is saved by node 0 of a multi-node job"):
        SequentialRunner().run(Pipeline([reader]), catalog)
