"""Generation jobs: the generate, compose-and-generate, queue-generation and job endpoints (SPEC 5.5.2, 5.5.3)."""
