"""Process-wide test environment, set before Django reads its settings."""

import os
import tempfile

_DATA_DIR = tempfile.mkdtemp(prefix="loraforge-test-")
os.environ["LORAFORGE_DATA_DIR"] = _DATA_DIR
os.environ.setdefault("LORAFORGE_LOG_LEVEL", "warning")
os.environ.setdefault("LORAFORGE_EMBEDDED_WORKER", "off")
os.environ.setdefault("LORAFORGE_SECRET_KEY", "test-secret-key-not-for-production-use-0123456789abcdef")
_wants_postgres = os.environ.get("LORAFORGE_TEST_DB") == "postgres" or (
    os.environ.get("LORAFORGE_TEST_DB") is None and os.environ.get("LORAFORGE_TEST_POSTGRES") == "1"
)
if _wants_postgres:
    os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
else:
    os.environ.pop("DATABASE_URL", None)
for _name in ("REDIS_URL", "SDNEXT_URL", "LORAFORGE_API_KEY", "API_KEY", "LORAFORGE_AUTH", "LORAFORGE_LORA_DIRS"):
    os.environ.pop(_name, None)
