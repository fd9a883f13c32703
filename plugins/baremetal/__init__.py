"""Baremetal universe: dedicated servers."""
