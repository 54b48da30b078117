"""Reads of analytics: reports (5.7), dashboard data (5.8), system status (5.10)."""
