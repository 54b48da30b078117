"""Settings of the test suite: a private data folder and safe defaults, then the real settings.

pytest-django imports this module before anything reads the environment, so every test process
gets its own ``LORAFORGE_DATA_DIR`` (a file SQLite test database there, shared with the servers and
workers that tests start) and, with ``LORAFORGE_TEST_DB=postgres``, PostgreSQL.
"""

import os
import tempfile

if os.environ.get("LORAFORGE_TEST_PROCESS") != "1":
    os.environ["LORAFORGE_TEST_PROCESS"] = "1"
    os.environ["LORAFORGE_DATA_DIR"] = tempfile.mkdtemp(prefix="loraforge-test-")
    os.environ.setdefault("LORAFORGE_LOG_LEVEL", "warning")
    os.environ["LORAFORGE_EMBEDDED_WORKER"] = "off"
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

from loraforge import settings as _base

globals().update({name: value for name, value in vars(_base).items() if name.isupper()})
