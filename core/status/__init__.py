"""The work board: incidents and known bugs per universe and product, read by anyone without a key, followed by mail."""
