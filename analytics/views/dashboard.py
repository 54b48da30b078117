"""Placeholder until its part of issue 12 lands."""

from __future__ import annotations

from django.urls import URLPattern


def routes() -> list[URLPattern]:
    return []
