"""``UserPreferenceAdmin``: the user's preferences, editable (SPEC 9.1). Values are normalised like the API's
(``normalize_preference_value``); a second preference with the same type and value is a form error."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from recommendations.models import UserPreference
from recommendations.services.user_data import normalize_preference_value, preference_delete, preference_upsert

DUPLICATE = "A preference with this type and value already exists."
CONFIDENCE_ERROR = "confidence must be between 0 and 1"


class UserPreferenceForm(forms.ModelForm):
    confidence = forms.FloatField(
        min_value=0,
        max_value=1,
        initial=0.5,
        error_messages={"min_value": CONFIDENCE_ERROR, "max_value": CONFIDENCE_ERROR},
        help_text="0 to 1.",
    )

    class Meta:
        model = UserPreference
        fields = ("preference_type", "preference_value", "confidence")

    def clean_preference_value(self) -> str:
        value = normalize_preference_value(str(self.cleaned_data["preference_value"]))
        if not value:
            raise forms.ValidationError("This field is required.")
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        kind, value = cleaned.get("preference_type"), cleaned.get("preference_value")
        if kind and value:
            taken = UserPreference.objects.filter(preference_type=kind, preference_value=value)
            if taken.exclude(pk=self.instance.pk).exists():
                self.add_error("preference_value", DUPLICATE)
        return cleaned


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    form = UserPreferenceForm
    list_display = (
        "preference_type", "preference_value", "confidence", "learned_from", "evidence_count", "last_evidence_at",
        "updated_at",
    )  # fmt: skip
    list_filter = ("preference_type", "learned_from")
    search_fields = ("preference_value",)
    list_per_page = 100
    readonly_fields = ("learned_from", "evidence_count", "last_evidence_at", "created_at", "updated_at")

    def get_fields(self, request: HttpRequest, obj: UserPreference | None = None) -> Any:
        editable = UserPreferenceForm.Meta.fields
        return editable if obj is None else (*editable, *self.readonly_fields)

    def save_model(self, request: HttpRequest, obj: UserPreference, form: Any, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created, _ = preference_upsert(
            preference_type=data["preference_type"], preference_value=data["preference_value"],
            confidence=data["confidence"], explicit=True,
        )  # fmt: skip
        obj.pk = created.pk  # the admin logs and redirects with this instance

    def delete_model(self, request: HttpRequest, obj: UserPreference) -> None:
        preference_delete(preference_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[UserPreference]) -> None:
        for preference_id in queryset.values_list("pk", flat=True):
            preference_delete(preference_id=preference_id)
