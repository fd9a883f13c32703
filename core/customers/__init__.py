"""Customer accounts, API keys, partners, and the contacts of services."""
