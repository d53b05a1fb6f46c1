"""Preprocessing code extracted by nb2prod from diabetes_custom.ipynb.

Each block below is one `preprocess` cell of the notebook, verbatim, in cell order.
"""

# --- cell 10 ---
import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin


class QuantileClipper(BaseEstimator, TransformerMixin):
    """Clip every column to the [quantile, 1 - quantile] range seen during fit."""

    def __init__(self, quantile=0.01):
        self.quantile = quantile

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        self.lower_ = np.nanquantile(values, self.quantile, axis=0)
        self.upper_ = np.nanquantile(values, 1 - self.quantile, axis=0)
        self.n_features_in_ = values.shape[1]
        return self

    def transform(self, X):
        values = np.asarray(X, dtype=float)
        return np.clip(values, self.lower_, self.upper_)

# --- cell 11 ---
import pandas as pd


def preprocess(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the body-mass-index x blood-pressure interaction; never modifies the input."""
    out = frame.copy()
    out["bmi_bp"] = out["bmi"] * out["bp"]
    return out
