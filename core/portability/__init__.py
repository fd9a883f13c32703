"""Leaving and arriving with data: the account export and import, the legacy import."""
