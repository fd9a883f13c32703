"""Pay-as-you-go: usage ingestion, rating, monthly billing, savings plans and spending alerts."""
