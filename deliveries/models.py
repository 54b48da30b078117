"""Models of the `deliveries` app (SPEC 3); they arrive with the issue that builds this app."""
