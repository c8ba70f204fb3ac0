"""Training engine: optimizer groups, schedules, deterministic stream sampling, checkpoints, the loop, torchrun launch.

Nothing here knows about X-FM: the loop calls ``objective(model, batch) -> dict of losses``.
"""
