"""Django settings: every value comes from the environment through ``loraforge.env``."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from loraforge import env

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Paths -------------------------------------------------------------------------------
DATA_DIR = env.path("LORAFORGE_DATA_DIR", BASE_DIR / "data")
MEDIA_ROOT = env.path("LORAFORGE_MEDIA_ROOT", DATA_DIR / "media")
MEDIA_URL = env.string("LORAFORGE_MEDIA_URL", "/media/")
if not MEDIA_URL.startswith("/") or not MEDIA_URL.endswith("/"):
    raise ImproperlyConfigured("LORAFORGE_MEDIA_URL: must start and end with '/'")
LORAFORGE_PUBLIC_URL = (env.url("LORAFORGE_PUBLIC_URL", schemes=("http", "https")) or "").rstrip("/")
LORAFORGE_LORA_DIRS = env.path_list("LORAFORGE_LORA_DIRS", [DATA_DIR / "loras"])
LORAFORGE_IMPORT_SUBDIR = env.string("LORAFORGE_IMPORT_SUBDIR", "imported")
LORAFORGE_BACKUP_DIR = DATA_DIR / "backups"
LORAFORGE_UPLOAD_DIR = DATA_DIR / "uploads"
LORAFORGE_DELIVERY_DIR = DATA_DIR / "deliveries"
LORAFORGE_TMP_DIR = DATA_DIR / "tmp"

# --- Secrets and security ----------------------------------------------------------------


def _secret_key() -> str:
    configured = env.optional_string("LORAFORGE_SECRET_KEY")
    if configured:
        return configured
    key_file = DATA_DIR / "secret_key"
    try:
        return key_file.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    try:
        with key_file.open("x", encoding="utf-8") as handle:
            handle.write(key)
        key_file.chmod(0o600)
    except FileExistsError:  # another process won the race
        return key_file.read_text(encoding="utf-8").strip()
    return key


SECRET_KEY = _secret_key()
DEBUG = env.boolean("LORAFORGE_DEBUG", False)
HOST = env.string("HOST", "127.0.0.1")
PORT = env.integer("PORT", 8000, minimum=1, maximum=65535)
_default_hosts = ["localhost", "127.0.0.1", "[::1]"]
if HOST not in ("0.0.0.0", "::", *_default_hosts):  # noqa: S104 (a wildcard bind adds no host name)
    _default_hosts.append(HOST)
ALLOWED_HOSTS = env.string_list("LORAFORGE_ALLOWED_HOSTS", _default_hosts)
CSRF_TRUSTED_ORIGINS = env.string_list("LORAFORGE_CSRF_TRUSTED_ORIGINS", [])
LORAFORGE_AUTH = env.boolean("LORAFORGE_AUTH", True)
LORAFORGE_API_KEY = env.optional_string("LORAFORGE_API_KEY", aliases=("API_KEY",))
LORAFORGE_MEDIA_PUBLIC = env.boolean("LORAFORGE_MEDIA_PUBLIC", False)
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
APPEND_SLASH = False

# --- Applications ------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "loraforge.apps.LoraforgeConfig",
    "adapters.apps.AdaptersConfig",
    "deliveries.apps.DeliveriesConfig",
    "generation.apps.GenerationConfig",
    "recommendations.apps.RecommendationsConfig",
    "analytics.apps.AnalyticsConfig",
    "backups.apps.BackupsConfig",
]

MIDDLEWARE = [
    "loraforge.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "loraforge.urls"
ASGI_APPLICATION = "loraforge.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database, cache, channels, Celery ----------------------------------------------------
DATABASES = {"default": env.database("DATABASE_URL", DATA_DIR / "db.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
REDIS_URL = env.url("REDIS_URL", schemes=("redis", "rediss", "unix"))
LORAFORGE_MODE = "distributed" if REDIS_URL else "embedded"

if REDIS_URL:
    CACHES: dict[str, Any] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "loraforge",
            "OPTIONS": {"serializer": "loraforge.cache_serializers.JSONSerializer"},
        }
    }
    CHANNEL_LAYERS: dict[str, Any] = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # One channel per web process receives every event (loraforge/progress_hub.py): room for bursts.
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "loraforge", "capacity": 5000},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "loraforge.channel_layers.ThreadSafeInMemoryChannelLayer", "CONFIG": {"capacity": 5000}}
    }

CELERY_BROKER_URL = REDIS_URL or "memory://"
LORAFORGE_EMBEDDED_WORKER = env.choice("LORAFORGE_EMBEDDED_WORKER", "auto", ("auto", "on", "off"))
LORAFORGE_EMBEDDED_CONCURRENCY = env.integer("LORAFORGE_EMBEDDED_CONCURRENCY", 4, minimum=1, maximum=64)
LORAFORGE_HTTP_THREADS = env.integer("LORAFORGE_HTTP_THREADS", 4, minimum=1, maximum=64)

# --- Library and limits -------------------------------------------------------------------
LORAFORGE_SCAN_WORKERS = env.integer("LORAFORGE_SCAN_WORKERS", 4, minimum=1, maximum=32)
LORAFORGE_SCAN_IGNORE = env.string_list("LORAFORGE_SCAN_IGNORE", [])
LORAFORGE_SCAN_ON_STARTUP = env.boolean("LORAFORGE_SCAN_ON_STARTUP", False)
LORAFORGE_HEADER_MAX_MB = env.integer("LORAFORGE_HEADER_MAX_MB", 64, minimum=1, maximum=4096)
LORAFORGE_SYNC_HASH_MAX_MB = env.integer("LORAFORGE_SYNC_HASH_MAX_MB", 256, minimum=0)
LORAFORGE_MAX_BODY_MB = env.integer("LORAFORGE_MAX_BODY_MB", 2, minimum=1, maximum=1024)
LORAFORGE_MAX_UPLOAD_MB = env.integer("LORAFORGE_MAX_UPLOAD_MB", 2048, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = LORAFORGE_MAX_BODY_MB * 1024 * 1024
LORAFORGE_API_CACHE_ENTRIES = env.integer("LORAFORGE_API_CACHE_ENTRIES", 512, minimum=0, maximum=100_000)
LORAFORGE_JOB_STALE_SECONDS = env.integer("LORAFORGE_JOB_STALE_SECONDS", 60, minimum=5)
LORAFORGE_JOB_MAX_ATTEMPTS = env.integer("LORAFORGE_JOB_MAX_ATTEMPTS", 2, minimum=1, maximum=20)
LORAFORGE_EMBEDDING_MODEL = env.string("LORAFORGE_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2")
LORAFORGE_DELIVERY_ALLOWED_HOSTS = env.string_list("LORAFORGE_DELIVERY_ALLOWED_HOSTS", [])
LORAFORGE_DELIVERY_TIMEOUT = env.integer("LORAFORGE_DELIVERY_TIMEOUT", 30, minimum=1, maximum=120)
LORAFORGE_IMMEDIATE_WAIT_SECONDS = env.integer("LORAFORGE_IMMEDIATE_WAIT_SECONDS", 120, minimum=1)
LORAFORGE_QUEUE_WAIT_TIMEOUT = env.integer("LORAFORGE_QUEUE_WAIT_TIMEOUT", 3600, minimum=1)
LORAFORGE_BACKEND_HEALTH_TTL = env.integer("LORAFORGE_BACKEND_HEALTH_TTL", 15, minimum=0)
LORAFORGE_IMPORT_MAX_MEMBERS = env.integer("LORAFORGE_IMPORT_MAX_MEMBERS", 100_000, minimum=1)
LORAFORGE_IMPORT_MAX_MEMBER_MB = env.integer("LORAFORGE_IMPORT_MAX_MEMBER_MB", 16_384, minimum=1)
LORAFORGE_IMPORT_MAX_TOTAL_MB = env.integer("LORAFORGE_IMPORT_MAX_TOTAL_MB", 131_072, minimum=1)
LORAFORGE_IMPORT_MAX_RATIO = env.integer("LORAFORGE_IMPORT_MAX_RATIO", 200, minimum=1)
LORAFORGE_BACKUP_KEEP = env.integer("LORAFORGE_BACKUP_KEEP", 10, minimum=0)
LORAFORGE_BACKUP_INTERVAL_HOURS = env.integer("LORAFORGE_BACKUP_INTERVAL_HOURS", 0, minimum=0)
LORAFORGE_RESOURCE_SAMPLE_SECONDS = env.integer("LORAFORGE_RESOURCE_SAMPLE_SECONDS", 60, minimum=0)
LORAFORGE_RESOURCE_RETENTION_DAYS = env.integer("LORAFORGE_RESOURCE_RETENTION_DAYS", 30, minimum=1)
LORAFORGE_STATUS_ACTIVE_WARNING = env.integer("LORAFORGE_STATUS_ACTIVE_WARNING", 5, minimum=0)
LORAFORGE_STATUS_FAILED_WARNING = env.integer("LORAFORGE_STATUS_FAILED_WARNING", 5, minimum=0)
LORAFORGE_DISK_WARNING_PERCENT = env.integer("LORAFORGE_DISK_WARNING_PERCENT", 90, minimum=1, maximum=100)
LORAFORGE_EMBEDDING_DEVICE = env.choice("LORAFORGE_EMBEDDING_DEVICE", "auto", ("auto", "cpu", "cuda"))
LORAFORGE_RECO_WEIGHTS = env.json_object("LORAFORGE_RECO_WEIGHTS")
_RECO_WEIGHT_KEYS = {"semantic", "lexical", "content", "co_usage", "quality", "popularity", "recency"}
for _key, _value in (LORAFORGE_RECO_WEIGHTS or {}).items():
    if _key not in _RECO_WEIGHT_KEYS or isinstance(_value, bool) or not isinstance(_value, int | float):
        raise ImproperlyConfigured(f"LORAFORGE_RECO_WEIGHTS: unknown key or non-numeric value for {_key!r}")
    if not 0 <= _value <= 1:
        raise ImproperlyConfigured(f"LORAFORGE_RECO_WEIGHTS: {_key} must be between 0 and 1")

# --- SDNext ---------------------------------------------------------------------------------
SDNEXT_URL = env.url("SDNEXT_URL", schemes=("http", "https"), aliases=("SDNEXT_BASE_URL",))
SDNEXT_USERNAME = env.optional_string("SDNEXT_USERNAME")
SDNEXT_PASSWORD = env.optional_string("SDNEXT_PASSWORD")
SDNEXT_TIMEOUT = env.integer("SDNEXT_TIMEOUT", 600, minimum=1, maximum=7200)
SDNEXT_CONNECT_TIMEOUT = env.floating("SDNEXT_CONNECT_TIMEOUT", 5.0, minimum=0.1, maximum=600)
SDNEXT_POLL_INTERVAL = env.floating("SDNEXT_POLL_INTERVAL", 0.5, minimum=0.2, maximum=10)
SDNEXT_RETRIES = env.integer("SDNEXT_RETRIES", 3, minimum=1, maximum=10)
SDNEXT_DEFAULT_STEPS = env.integer("SDNEXT_DEFAULT_STEPS", 20, minimum=1, maximum=150)
SDNEXT_DEFAULT_SAMPLER = env.string("SDNEXT_DEFAULT_SAMPLER", "DPM++ 2M")
SDNEXT_DEFAULT_CFG_SCALE = env.floating("SDNEXT_DEFAULT_CFG_SCALE", 7.0, minimum=0, maximum=30)

# --- Static files, i18n ---------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- REST framework and OpenAPI -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "loraforge.auth.ApiKeyAuthentication",
        "loraforge.auth.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["loraforge.auth.IsApiPrincipal"],
    "DEFAULT_PARSER_CLASSES": ["loraforge.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "loraforge.renderers.UTF8JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PAGINATION_CLASS": "loraforge.pagination.EnvelopePagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "loraforge.schema.AutoSchema",
    "EXCEPTION_HANDLER": "loraforge.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": False,
    "STRICT_JSON": True,
    "UNICODE_JSON": True,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "LoRAForge API",
    "DESCRIPTION": "Catalogue, compose and generate with LoRA adapters.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "PREPROCESSING_HOOKS": ["loraforge.schema.document_canonical_paths"],
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "loraforge.schema.document_problems"],
    # The import and restore modes (SPEC 5.9): one enum, named once ("mode" also names the delivery modes).
    "ENUM_NAME_OVERRIDES": {"ArchiveModeEnum": ["merge", "replace", "dry-run"]},
}

# --- Logging --------------------------------------------------------------------------------
LORAFORGE_LOG_LEVEL = env.choice(
    "LORAFORGE_LOG_LEVEL", "info", ("debug", "info", "warning", "error", "critical")
).upper()
LORAFORGE_LOG_FORMAT = env.choice("LORAFORGE_LOG_FORMAT", "text", ("text", "json"))
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "loraforge.logging.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LORAFORGE_LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": LORAFORGE_LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        "kombu": {"level": "WARNING"},
    },
}
