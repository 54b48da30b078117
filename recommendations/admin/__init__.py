"""Admin for the recommender (SPEC 9.1): read-only sessions, feedback and embeddings, editable preferences, and the
adapter change page's recommendations panel and "compute embeddings" action.

Importing the package registers the model admins and the adapter page's extensions (``adapters.admin.extensions``:
``adapters`` never imports this app).
"""

from recommendations.admin.adapter_page import adapter_page_extend
from recommendations.admin.preferences import UserPreferenceAdmin
from recommendations.admin.records import AdapterEmbeddingAdmin, RecommendationFeedbackAdmin, RecommendationSessionAdmin

adapter_page_extend()

__all__ = ["AdapterEmbeddingAdmin", "RecommendationFeedbackAdmin", "RecommendationSessionAdmin", "UserPreferenceAdmin"]
