"""The version of nb2prod, importable without loading the pipeline."""

__version__ = "0.1.0"
