"""What the service and the load generator agree on: feature names, regions, cohorts.

Kept free of heavy imports so the load generator starts fast.
"""

from __future__ import annotations

FEATURES: tuple[str, ...] = (
    "amount",
    "age",
    "merchant_risk",
    "hour",
    "n_tx_24h",
    "distance_km",
    "device_risk",
    "tenure_days",
)
"""Model inputs, in the order the model reads them."""

REGIONS: tuple[str, ...] = ("eu", "us", "ap-south")
"""Regions the service knows; others are tagged ``other`` (region is a metric tag, so bounded)."""

COHORTS: tuple[str, ...] = ("new", "returning")

# (low, high) of plausible values, for synthetic traffic and training data.
RANGES: dict[str, tuple[float, float]] = {
    "amount": (1.0, 2_000.0),
    "age": (18.0, 90.0),
    "merchant_risk": (0.0, 1.0),
    "hour": (0.0, 23.0),
    "n_tx_24h": (0.0, 40.0),
    "distance_km": (0.0, 500.0),
    "device_risk": (0.0, 1.0),
    "tenure_days": (0.0, 3_650.0),
}
