"""shopstream: an e-commerce transaction data platform."""

__version__ = "0.1.0"
