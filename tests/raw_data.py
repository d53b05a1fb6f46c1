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


def write_passengers(folder: Path, rows: int = 400) -> tuple[Path, Path]:
    """A Titanic-style train.csv (with the label) and test.csv (without): ages and ports missing."""
    rng = np.random.default_rng(3)
    pclass = rng.choice([1, 2, 3], rows, p=[0.25, 0.2, 0.55])
    sex = rng.choice(["male", "female"], rows, p=[0.64, 0.36])
    age = rng.normal(30, 13, rows).clip(0.5, 79).round(1)
    age[rng.random(rows) < 0.2] = np.nan
    fare = (rng.gamma(2.0, 12.0, rows) * (4 - pclass)).round(2)
    score = 1.8 * (sex == "female") - 0.9 * (pclass - 2) - 0.02 * (np.nan_to_num(age, nan=30) - 30)
    frame = pd.DataFrame(
        {
            "PassengerId": np.arange(1, rows + 1),
            "Survived": (score + rng.normal(0, 1, rows) > 0.3).astype(int),
            "Pclass": pclass,
            "Name": [f"Passenger {i}" for i in range(rows)],
            "Sex": sex,
            "Age": age,
            "SibSp": rng.poisson(0.5, rows),
            "Parch": rng.poisson(0.4, rows),
            "Fare": fare,
            "Embarked": np.where(
                rng.random(rows) < 0.03, None, rng.choice(["S", "C", "Q"], rows, p=[0.72, 0.19, 0.09])
            ),
        }
    )
    cut = int(rows * 0.75)
    train, test = folder / "train.csv", folder / "test.csv"
    frame.iloc[:cut].to_csv(train, index=False)
    frame.iloc[cut:].drop(columns="Survived").to_csv(test, index=False)
    return train, test


def write_houses(folder: Path, rows: int = 300) -> tuple[Path, Path]:
    """House sales and, in a second file, facts about each district that the sales refer to."""
    rng = np.random.default_rng(8)
    districts = pd.DataFrame(
        {
            "district": ["north", "south", "east", "west", "centre"],
            "crime_rate": [2.1, 4.5, 3.2, 1.4, 5.8],
            "school_score": [7.5, 5.0, 6.2, 8.1, 6.8],
        }
    )
    district = rng.choice(districts["district"], rows)
    area = rng.normal(110, 35, rows).clip(30, 300).round(0)
    rooms = (area / 30 + rng.normal(0, 0.7, rows)).clip(1, 9).round(0).astype(int)
    year = rng.integers(1950, 2023, rows)
    quality = dict(zip(districts["district"], districts["school_score"] - districts["crime_rate"] / 2, strict=True))
    price = 1800 * area + 9000 * np.vectorize(quality.get)(district) - 400 * (2024 - year)
    houses = pd.DataFrame(
        {
            "Id": np.arange(1, rows + 1),
            "District": district,
            "LotArea": area,
            "Rooms": rooms,
            "YearBuilt": year,
            "Garage": rng.choice(["yes", "no"], rows, p=[0.6, 0.4]),
            "SalePrice": (price * rng.lognormal(0, 0.08, rows)).round(-2),
        }
    )
    sales, facts = folder / "houses.csv", folder / "districts.csv"
    houses.to_csv(sales, index=False)
    districts.to_csv(facts, index=False)
    return sales, facts


def write_heart(folder: Path, rows: int = 360) -> Path:
    """Heart-disease records: an id, M/F and Y/N columns, chest-pain and slope codes, zeros for
    cholesterol that was not measured (as in the public data set)."""
    rng = np.random.default_rng(21)
    age = rng.integers(29, 78, rows)
    sex = rng.choice(["M", "F"], rows, p=[0.75, 0.25])
    pain = rng.choice(["ASY", "NAP", "ATA", "TA"], rows, p=[0.5, 0.22, 0.2, 0.08])
    bp = rng.normal(132, 17, rows).round(0).clip(90, 200).astype(int)
    cholesterol = rng.normal(240, 50, rows).round(0).clip(100, 500).astype(int)
    cholesterol[rng.random(rows) < 0.1] = 0
    max_hr = (205 - 0.7 * age + rng.normal(0, 18, rows)).round(0).astype(int)
    angina = rng.choice(["Y", "N"], rows, p=[0.4, 0.6])
    oldpeak = rng.gamma(1.2, 0.8, rows).round(1)
    slope = rng.choice(["Up", "Flat", "Down"], rows, p=[0.43, 0.5, 0.07])
    risk = (
        0.04 * (age - 53)
        + 0.9 * (sex == "M")
        + 1.2 * (pain == "ASY")
        + 1.1 * (angina == "Y")
        + 0.6 * oldpeak
        + 1.0 * (slope == "Flat")
        - 0.02 * (max_hr - 140)
        + rng.normal(0, 1, rows)
    )
    frame = pd.DataFrame(
        {
            "PatientID": np.arange(1000, 1000 + rows),
            "Age": age,
            "Sex": sex,
            "ChestPainType": pain,
            "RestingBP": bp,
            "Cholesterol": cholesterol,
            "FastingBS": (rng.random(rows) < 0.23).astype(int),
            "MaxHR": max_hr,
            "ExerciseAngina": angina,
            "Oldpeak": oldpeak,
            "ST_Slope": slope,
            "HeartDisease": (risk > 1.6).astype(int),
        }
    )
    path = folder / "heart.csv"
    frame.to_csv(path, index=False)
    return path


def write_insurance(folder: Path, rows: int = 400) -> Path:
    """Medical insurance charges: sex, smoker and region as text (some padded), BMI sometimes missing."""
    rng = np.random.default_rng(13)
    age = rng.integers(18, 65, rows)
    sex = rng.choice(["male", "female", "Male "], rows, p=[0.45, 0.5, 0.05])
    bmi = rng.normal(30.5, 6, rows).round(2).clip(16, 53)
    children = rng.poisson(1.1, rows).clip(0, 5)
    smoker = rng.choice(["yes", "no"], rows, p=[0.2, 0.8])
    region = rng.choice(["southeast", "southwest", "northwest", "northeast"], rows)
    charges = 250 * age + 320 * (bmi - 30) + 475 * children + 23_000 * (smoker == "yes") + rng.normal(0, 4000, rows)
    bmi[rng.random(rows) < 0.08] = np.nan
    frame = pd.DataFrame(
        {
            "age": age,
            "sex": sex,
            "bmi": bmi,
            "children": children,
            "smoker": smoker,
            "region": region,
            "charges": charges.clip(1100).round(2),
        }
    )
    path = folder / "insurance.csv"
    frame.to_csv(path, index=False)
    return path


def write_laptops(folder: Path, rows: int = 320) -> Path:
    """Laptop listings as scraped: RAM as "8GB", weight as "1.37kg", an id, the price in euros."""
    rng = np.random.default_rng(17)
    company = rng.choice(["Dell", "Lenovo", "HP", "Asus", "Apple", "Acer"], rows, p=[0.22, 0.22, 0.2, 0.14, 0.1, 0.12])
    kind = rng.choice(["Notebook", "Ultrabook", "Gaming", "2 in 1 Convertible"], rows, p=[0.5, 0.2, 0.18, 0.12])
    ram = rng.choice([4, 8, 16, 32], rows, p=[0.2, 0.45, 0.28, 0.07])
    inches = rng.choice([13.3, 14.0, 15.6, 17.3], rows, p=[0.25, 0.2, 0.45, 0.1])
    weight = (0.9 + 0.12 * (inches - 12) + 0.8 * (kind == "Gaming") + rng.normal(0, 0.15, rows)).round(2)
    price = (
        350
        + 55 * ram
        + 400 * (company == "Apple")
        + 450 * (kind == "Gaming")
        + 250 * (kind == "Ultrabook")
        + rng.normal(0, 120, rows)
    )
    frame = pd.DataFrame(
        {
            "laptop_ID": np.arange(1, rows + 1),
            "Company": company,
            "TypeName": kind,
            "Inches": inches,
            "Ram": [f"{r}GB" for r in ram],
            "Weight": [f"{w}kg" for w in weight],
            "Price_euros": price.clip(200).round(2),
        }
    )
    path = folder / "laptops.csv"
    frame.to_csv(path, index=False)
    return path
