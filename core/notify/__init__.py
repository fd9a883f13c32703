"""Notifications: rendered in the reader's language and sent."""
