"""Generation results: the stored images of generation jobs, their files and endpoints (SPEC 3.4, 5.5.4)."""
