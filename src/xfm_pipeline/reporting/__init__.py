"""Results tables: every task's metrics beside the paper's numbers (no Kedro imports)."""
