"""Extension points of ``AdapterAdmin`` for the apps above ``adapters`` (STYLE: ``adapters`` imports no other
app): read-only panels on the change page and extra changelist actions, registered by those apps' admin modules.

A panel renders server-side from the adapter; a panel that raises is logged and replaced by its
``unavailable`` text, so an extension never breaks the change page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

if TYPE_CHECKING:
    from django.contrib.admin import ModelAdmin

    from adapters.models import Adapter

logger = logging.getLogger("loraforge.adapters")

PanelRenderer = Callable[[HttpRequest, "Adapter"], str]
ActionFunction = Callable[["ModelAdmin[Any]", HttpRequest, QuerySet[Any]], Any]


@dataclass(frozen=True)
class ChangePanel:
    """A read-only section of the adapter change page. ``render`` returns HTML marked safe (``render_to_string``,
    ``format_html``); a plain ``str`` is escaped by the page."""

    key: str
    title: str
    render: PanelRenderer
    unavailable: str = ""

    def unavailable_text(self) -> str:
        return self.unavailable or f"{self.title} unavailable"


@dataclass(frozen=True)
class ListAction:
    """A changelist action ``function(modeladmin, request, queryset)``, offered to users with ``permissions``."""

    name: str
    function: ActionFunction
    description: str
    permissions: tuple[str, ...] = ("change",)


@dataclass(frozen=True)
class RenderedPanel:
    key: str
    title: str
    html: str


_panels: dict[str, ChangePanel] = {}
_actions: dict[str, ListAction] = {}


def change_panel_register(panel: ChangePanel) -> None:
    _panels[panel.key] = panel


def list_action_register(action: ListAction) -> None:
    _actions[action.name] = action


def list_actions() -> list[ListAction]:
    return list(_actions.values())


def change_panels_render(request: HttpRequest, adapter: Adapter) -> list[RenderedPanel]:
    return [RenderedPanel(panel.key, panel.title, _render(panel, request, adapter)) for panel in _panels.values()]


def _render(panel: ChangePanel, request: HttpRequest, adapter: Adapter) -> str:
    try:
        return panel.render(request, adapter)
    except Exception:
        logger.exception("Adapter change panel %r failed for adapter %s", panel.key, adapter.pk)
        return format_html('<p class="lf-panel-unavailable">{}</p>', panel.unavailable_text())
