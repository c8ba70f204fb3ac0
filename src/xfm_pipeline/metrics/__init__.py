"""Evaluation metrics as pure functions on plain Python values (no Kedro, MLflow or torch)."""
