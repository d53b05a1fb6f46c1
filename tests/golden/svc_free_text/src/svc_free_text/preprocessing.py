"""Preprocessing code extracted by nb2prod from svc_free_text.ipynb.

Each block below is one `preprocess` cell of the notebook, verbatim, in cell order.
"""
