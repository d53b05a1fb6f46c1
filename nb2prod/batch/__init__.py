"""Batch scoring (`nb2prod predict`): CSV or Parquet files scored in chunks by a converted service's own code."""
