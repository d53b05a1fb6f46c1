"""Preprocessing code extracted by nb2prod from customers_mixed.ipynb.

Each block below is one `preprocess` cell of the notebook, verbatim, in cell order.
"""

# --- cell 11 ---
NUMERIC_COLUMNS = ["age", "income", "monthly spend"]
CATEGORICAL_COLUMNS = ["city", "plan", "is_member"]
