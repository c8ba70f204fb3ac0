"""The shapes world: a generated, learnable stand-in for COCO/VQAv2/NLVR2/RefCOCO+/GLUE/ImageNet,
written in their real on-disk formats (docs/data_formats.md).

Modules: ``scenes`` (sampling), ``render`` (Pillow drawing), ``language`` (captions, regions,
referring expressions), ``vqa``, ``nlvr``, ``glue`` (task-specific language), ``config`` (parameters),
``world`` (assembling every dataset, and the file writer).
"""

from xfm_pipeline.data.shapes_world.config import PRESETS, ShapesWorldConfig, shapes_world_config
from xfm_pipeline.data.shapes_world.world import ShapesWorld, generate_shapes_world, write_shapes_world

__all__ = ["PRESETS", "ShapesWorld", "ShapesWorldConfig", "generate_shapes_world", "shapes_world_config", "write_shapes_world"]
