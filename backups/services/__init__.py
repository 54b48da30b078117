"""Services of the backups app: exports, imports, backups and restores."""
