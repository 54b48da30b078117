"""Models of the `generation` app (SPEC 3); they arrive with the issue that builds this app."""
