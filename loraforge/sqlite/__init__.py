"""LoRAForge's SQLite database backend: Django's, with writers queued in the process (see ``base``)."""
