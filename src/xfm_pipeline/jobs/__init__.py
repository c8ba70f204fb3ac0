"""Jobs: assemble model + data + objective + training loop from a JSON-able config.

A job runs in-process or on every rank of a torchrun launch (``training.launch.run_job``); Kedro nodes
prepare its config and turn its result back into catalog outputs.
"""
