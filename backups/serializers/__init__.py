"""Serializers of the backups app: request bodies and the responses the schema documents."""
