"""Enterprise universe: Hosted Private Cloud packs."""
