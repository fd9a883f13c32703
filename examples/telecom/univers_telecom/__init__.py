"""The Telecom universe for Univers."""
