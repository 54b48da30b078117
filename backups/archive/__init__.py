"""The ``loraforge-archive`` format (SPEC 6.10): what exports, backups, imports and restores share."""
