"""Serializers of analytics (response shapes for the schema; one module per endpoint group)."""
