"""Downstream tasks: one module each with the same small interface (see ``base.Task``).

The registry ``TASKS`` is filled explicitly in ``registry.py``; adding a task is one module and one
entry there, plus its parameters in ``conf/base/parameters_finetune.yml``.
"""
