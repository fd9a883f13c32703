"""Web universe: domain names, web hosting and email."""
