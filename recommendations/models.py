"""Models of the `recommendations` app (SPEC 3); they arrive with the issue that builds this app."""
