"""Renewal: the daily run, dunning, and the forecast of what renews."""
