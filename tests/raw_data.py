"""CSV files for the raw-row notebooks in tests/notebooks (`raw_*.ipynb`), generated: no network.

Each writer puts the data file beside the notebook, under the name the notebook reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_cars(folder: Path, rows: int = 300) -> Path:
    """Used-car listings as a tutorial's CSV has them: an id, capitalised names, padded text."""
    rng = np.random.default_rng(11)
    year = rng.integers(2005, 2023, rows)
    present = rng.gamma(3.0, 3.0, rows).round(2) + 2
    kms = rng.integers(500, 200_000, rows)
    fuel = rng.choice([" Petrol", "Diesel ", "CNG"], rows, p=[0.6, 0.3, 0.1])
    seller = rng.choice(["Dealer", "Individual"], rows)
    transmission = rng.choice(["Manual", "Automatic"], rows, p=[0.7, 0.3])
    owner = rng.choice(["First", "Second", "Third"], rows, p=[0.7, 0.2, 0.1])
    price = present * (0.93 ** (2024 - year)) * np.where(transmission == "Automatic", 1.1, 1.0)
    price = (price - kms / 400_000 + rng.normal(0, 0.3, rows)).clip(0.2).round(2)
    frame = pd.DataFrame(
        {
            "Car_ID": np.arange(1, rows + 1),
            "Year": year,
            "Selling_Price": price,
            "Present_Price": present,
            "Kms_Driven": kms,
            "Fuel_Type": fuel,
            "Seller_Type": seller,
            "Transmission": transmission,
            "Owner": owner,
        }
    )
    path = folder / "cars.csv"
    frame.to_csv(path, index=False)
    return path


def write_churn(folder: Path, rows: int = 400) -> Path:
    """Telco customers: TotalCharges as text with blanks, Yes/No columns, two categoricals."""
    rng = np.random.default_rng(5)
    tenure = rng.integers(0, 72, rows)
    monthly = rng.normal(65, 25, rows).clip(18, 120).round(2)
    total = (tenure * monthly).round(2).astype(str)
    total[rng.random(rows) < 0.03] = " "  # new customers: no total yet, as in the public data set
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.55, 0.25, 0.2])
    payment = rng.choice(["Electronic check", "Mailed check", "Credit card"], rows)
    risk = 0.03 * monthly - 0.05 * tenure + 1.5 * (contract == "Month-to-month") + rng.normal(0, 1, rows)
    frame = pd.DataFrame(
        {
            "customerID": [f"C{i:05d}" for i in range(rows)],
            "gender": rng.choice(["Male", "Female"], rows),
            "Partner": rng.choice(["Yes", "No"], rows),
            "tenure": tenure,
            "MonthlyCharges": monthly,
            "TotalCharges": total,
            "Contract": contract,
            "PaymentMethod": payment,
            "Churn": np.where(risk > 1.0, "Yes", "No"),
        }
    )
    path = folder / "churn.csv"
    frame.to_csv(path, index=False)
    return path
