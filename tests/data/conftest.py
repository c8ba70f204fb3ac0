"""Session fixtures of a tiny generated shapes world (``tiny_world``, ``tiny_root``), for the reader and
generator tests of this directory."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_world():
    """The ``tiny`` preset world (seed 0), in memory."""
    from xfm_pipeline.data.shapes_world import generate_shapes_world, shapes_world_config

    return generate_shapes_world(shapes_world_config("tiny"))


@pytest.fixture(scope="session")
def tiny_root(tiny_world, tmp_path_factory):
    """The tiny world written to a temporary directory (layout of docs/data_formats.md)."""
    from xfm_pipeline.data.shapes_world import write_shapes_world

    root = tmp_path_factory.mktemp("shapes_world")
    write_shapes_world(tiny_world, root)
    return root
