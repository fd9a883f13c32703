"""Storefronts (the subsidiaries) and their tax: data keyed by country."""
