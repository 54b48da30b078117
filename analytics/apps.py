from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.db_triggers import ADAPTER_DAYS, install
        from loraforge.db_triggers import install_after_migrate
        from recommendations.cousage_query import DayCounts, day_counts_register

        install_after_migrate(self, install)
        # Co-usage sums each partner's succeeded jobs over the day rollups instead of counting its links.
        day_counts_register(DayCounts(table=ADAPTER_DAYS, adapter="adapter_id", day="bucket", succeeded="succeeded"))
