"""Public Cloud universe: projects and pay-as-you-go instances."""
