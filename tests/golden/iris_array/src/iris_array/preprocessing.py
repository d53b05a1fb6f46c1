"""Preprocessing code extracted by nb2prod from iris_array.ipynb.

Each block below is one `preprocess` cell of the notebook, verbatim, in cell order.
"""
