"""Adapter admin forms: edits are validated by the API's PATCH serializer, so the admin accepts exactly what the API
does."""

from __future__ import annotations

from functools import cache
from typing import Any

from django import forms
from django.db.models import Value
from django.db.models.functions import Coalesce

from adapters.models import CURATABLE_FIELDS, ORDINAL_MAX, ORDINAL_MIN, WEIGHT_MAX, WEIGHT_MIN, Adapter
from adapters.serializers import AdapterUpdateSerializer
from adapters.services import NAME_VERSION_TAKEN


def _messages_of(errors: Any) -> list[str]:
    """Flatten DRF's nested error structures (``{"tags": {"0": [...]}}``) into plain messages."""
    if isinstance(errors, dict):
        return [message for nested in errors.values() for message in _messages_of(nested)]
    if isinstance(errors, list):
        return [message for nested in errors for message in _messages_of(nested)]
    return [str(errors)]


@cache
def _api_field_names() -> frozenset[str]:
    return frozenset(AdapterUpdateSerializer().fields)


class LinesField(forms.Field):
    """A JSON list of strings edited as a textarea, one item per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value: Any) -> Any:
        return "\n".join(str(item) for item in value) if isinstance(value, list) else value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        return [line.strip() for line in str(value or "").splitlines() if line.strip()]


class ApiValidatedAdapterForm(forms.ModelForm):
    """Validates the changed fields with the API's PATCH serializer, so the admin accepts exactly what the API does.

    ``api_changes`` holds the validated changes for ``adapter_update``.
    """

    weight = forms.FloatField(min_value=WEIGHT_MIN, max_value=WEIGHT_MAX)
    ordinal = forms.IntegerField(min_value=ORDINAL_MIN, max_value=ORDINAL_MAX, required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.api_changes: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        changes = {name: cleaned[name] for name in self.changed_data if name in cleaned and name in _api_field_names()}
        if not changes:
            return cleaned
        serializer = AdapterUpdateSerializer(data=changes)
        if not serializer.is_valid():
            for name, errors in serializer.errors.items():
                self.add_error(name if name in self.fields else None, _messages_of(errors))
            return cleaned
        self.api_changes = dict(serializer.validated_data)
        cleaned.update(self.api_changes)
        self._check_name_version()
        return cleaned

    def _check_name_version(self) -> None:
        """The API's name/version clash rule, reported on the edited field instead of a constraint name."""
        if "name" not in self.api_changes and "version" not in self.api_changes:
            return
        name = self.api_changes.get("name", self.instance.name)
        version = self.api_changes.get("version", self.instance.version) or ""
        clash = (
            Adapter.objects.annotate(version_key=Coalesce("version", Value("")))
            .filter(name=name, version_key=version)
            .exclude(pk=self.instance.pk)
        )
        if clash.exists():
            self.add_error("name" if "name" in self.api_changes else "version", NAME_VERSION_TAKEN)
            self.api_changes = {}


class AdapterChangeListForm(ApiValidatedAdapterForm):
    class Meta:
        model = Adapter
        fields = ("active", "weight", "ordinal")


class AdapterAdminForm(ApiValidatedAdapterForm):
    tags = LinesField(required=False, help_text="One tag per line; tags are normalised like the API does.")
    triggers = LinesField(required=False, help_text="One trigger phrase per line.")
    trained_words = LinesField(required=False, help_text="One trained word per line.")
    locked_fields = forms.MultipleChoiceField(
        choices=[(name, name) for name in CURATABLE_FIELDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Locked fields are never overwritten by a re-import. Editing a field locks it.",
    )

    class Meta:
        model = Adapter
        fields = (*CURATABLE_FIELDS, "active", "weight", "ordinal", "locked_fields")
