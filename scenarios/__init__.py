"""Synthetic networks, scenario store, replay and KPIs."""
