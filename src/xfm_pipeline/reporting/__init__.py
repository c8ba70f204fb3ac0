"""Report building blocks, pure functions with no Kedro imports.

``table`` (results rows and markdown beside ``paper``'s numbers), ``headline`` (each task's headline
metric), ``plots`` (loss curves and metric bars as PNG, matplotlib Agg), ``drawing`` and ``examples``
(predictions drawn on their images with PIL), ``html`` (the report page).
"""
