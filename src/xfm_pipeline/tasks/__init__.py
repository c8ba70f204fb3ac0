"""Downstream tasks: one module each with the same small interface (``base.Task``) and one spec (``spec.TaskSpec``).

``registry.TASKS`` lists the specs explicitly; adding a task is one module, one line there and one block in
``conf/base/parameters_finetune.yml`` (docs/design.md#tasks).
"""
