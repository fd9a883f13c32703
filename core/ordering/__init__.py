"""Orders, the contracts they accept, and the right of withdrawal."""
