"""The typed environment readers of ``loraforge.env`` (SPEC 2, STYLE 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from loraforge import env

# --- raw / string -------------------------------------------------------------------------


def test_unset_variable_gives_the_default():
    assert env.string("LORAFORGE_X", "fallback", {}) == "fallback"
    assert env.optional_string("LORAFORGE_X", {}) is None


def test_value_is_trimmed():
    assert env.string("LORAFORGE_X", "d", {"LORAFORGE_X": "  value \n"}) == "value"


def test_blank_value_counts_as_unset():
    assert env.string("LORAFORGE_X", "d", {"LORAFORGE_X": "   "}) == "d"


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch):
    monkeypatch.setenv("LORAFORGE_TEST_ONLY_VALUE", "from-os")
    assert env.string("LORAFORGE_TEST_ONLY_VALUE", "d") == "from-os"


# --- _FILE variants -----------------------------------------------------------------------


def test_file_variant_content_is_trimmed(tmp_path: Path):
    secret = tmp_path / "key"
    secret.write_text("  s3cret-value\n\n", encoding="utf-8")
    assert env.optional_string("LORAFORGE_API_KEY", {"LORAFORGE_API_KEY_FILE": str(secret)}) == "s3cret-value"


def test_variable_wins_over_its_file_variant(tmp_path: Path):
    secret = tmp_path / "key"
    secret.write_text("from-file", encoding="utf-8")
    environ = {"LORAFORGE_API_KEY": "from-var", "LORAFORGE_API_KEY_FILE": str(secret)}
    assert env.optional_string("LORAFORGE_API_KEY", environ) == "from-var"


def test_unreadable_file_names_the_file_variable(tmp_path: Path):
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_SECRET_KEY_FILE: cannot read .*missing"):
        env.optional_string("LORAFORGE_SECRET_KEY", {"LORAFORGE_SECRET_KEY_FILE": str(tmp_path / "missing")})


def test_directory_as_file_variant_is_an_error(tmp_path: Path):
    with pytest.raises(ImproperlyConfigured, match="LORAFORGE_SECRET_KEY_FILE"):
        env.optional_string("LORAFORGE_SECRET_KEY", {"LORAFORGE_SECRET_KEY_FILE": str(tmp_path)})


def test_binary_file_variant_is_an_error_not_a_crash(tmp_path: Path):
    blob = tmp_path / "blob"
    blob.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ImproperlyConfigured, match="LORAFORGE_API_KEY_FILE"):
        env.optional_string("LORAFORGE_API_KEY", {"LORAFORGE_API_KEY_FILE": str(blob)})


def test_empty_file_counts_as_unset(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.write_text(" \n", encoding="utf-8")
    assert env.string("LORAFORGE_X", "d", {"LORAFORGE_X_FILE": str(empty)}) == "d"


def test_file_variant_feeds_typed_readers(tmp_path: Path):
    number = tmp_path / "n"
    number.write_text("12\n", encoding="utf-8")
    assert env.integer("LORAFORGE_N", 1, {"LORAFORGE_N_FILE": str(number)}) == 12


# --- aliases ------------------------------------------------------------------------------


def test_api_key_alias_is_a_fallback():
    assert env.optional_string("LORAFORGE_API_KEY", {"API_KEY": "legacy"}, aliases=("API_KEY",)) == "legacy"


def test_primary_name_wins_over_alias():
    environ = {"LORAFORGE_API_KEY": "primary", "API_KEY": "legacy"}
    assert env.optional_string("LORAFORGE_API_KEY", environ, aliases=("API_KEY",)) == "primary"


def test_alias_file_variant(tmp_path: Path):
    secret = tmp_path / "k"
    secret.write_text("legacy-file", encoding="utf-8")
    environ = {"API_KEY_FILE": str(secret)}
    assert env.optional_string("LORAFORGE_API_KEY", environ, aliases=("API_KEY",)) == "legacy-file"


def test_url_alias():
    environ = {"SDNEXT_BASE_URL": "http://gpu:7860"}
    assert env.url("SDNEXT_URL", environ, schemes=("http", "https"), aliases=("SDNEXT_BASE_URL",)) == "http://gpu:7860"


# --- booleans -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "YES", "on", "On", " true "])
def test_boolean_true_spellings(value: str):
    assert env.boolean("LORAFORGE_B", False, {"LORAFORGE_B": value}) is True


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "No", "off", "OFF"])
def test_boolean_false_spellings(value: str):
    assert env.boolean("LORAFORGE_B", True, {"LORAFORGE_B": value}) is False


@pytest.mark.parametrize("default", [True, False])
def test_boolean_default(default: bool):
    assert env.boolean("LORAFORGE_B", default, {}) is default


@pytest.mark.parametrize("value", ["maybe", "2", "enabled", "t", "y"])
def test_bad_boolean_names_the_variable(value: str):
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_B: expected a boolean"):
        env.boolean("LORAFORGE_B", False, {"LORAFORGE_B": value})


# --- integers -----------------------------------------------------------------------------


def test_integer_parses_base_10():
    assert env.integer("LORAFORGE_I", 4, {"LORAFORGE_I": "010"}) == 10
    assert env.integer("LORAFORGE_I", 4, {"LORAFORGE_I": "-3"}) == -3


def test_integer_default():
    assert env.integer("LORAFORGE_I", 4, {}) == 4


@pytest.mark.parametrize("value", ["abc", "1.5", "0x10", "4 workers", "1e3"])
def test_bad_integer_names_the_variable(value: str):
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_I: expected an integer"):
        env.integer("LORAFORGE_I", 4, {"LORAFORGE_I": value})


def test_integer_range_bounds_are_inclusive():
    environ = {"LORAFORGE_I": "1"}
    assert env.integer("LORAFORGE_I", 4, environ, minimum=1, maximum=32) == 1
    assert env.integer("LORAFORGE_I", 4, {"LORAFORGE_I": "32"}, minimum=1, maximum=32) == 32


@pytest.mark.parametrize(("value", "message"), [("0", "at least 1"), ("33", "at most 32")])
def test_integer_out_of_range(value: str, message: str):
    with pytest.raises(ImproperlyConfigured, match=rf"^LORAFORGE_I: must be {message}"):
        env.integer("LORAFORGE_I", 4, {"LORAFORGE_I": value}, minimum=1, maximum=32)


# --- floats -------------------------------------------------------------------------------


def test_float_parses():
    assert env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": "2.25"}) == 2.25
    assert env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": "3"}) == 3.0
    assert env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": "1e-1"}) == 0.1


def test_float_default():
    assert env.floating("LORAFORGE_F", 0.5, {}) == 0.5


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity"])
def test_float_rejects_non_finite(value: str):
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_F: expected a finite number"):
        env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": value})


def test_bad_float_names_the_variable():
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_F: expected a number"):
        env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": "fast"})


@pytest.mark.parametrize(("value", "message"), [("0.1", "at least 0.2"), ("10.5", "at most 10")])
def test_float_out_of_range(value: str, message: str):
    with pytest.raises(ImproperlyConfigured, match=rf"^LORAFORGE_F: must be {message}"):
        env.floating("LORAFORGE_F", 0.5, {"LORAFORGE_F": value}, minimum=0.2, maximum=10)


# --- lists and paths ----------------------------------------------------------------------


def test_list_splits_trims_and_drops_empty_entries():
    environ = {"LORAFORGE_L": " a.example , ,b.example,, *.c.example "}
    assert env.string_list("LORAFORGE_L", [], environ) == ["a.example", "b.example", "*.c.example"]


def test_list_default_is_copied():
    default = ["x"]
    result = env.string_list("LORAFORGE_L", default, {})
    assert result == ["x"]
    assert result is not default


def test_list_custom_separator():
    assert env.string_list("LORAFORGE_L", [], {"LORAFORGE_L": "a;b"}, sep=";") == ["a", "b"]


def test_path_is_made_absolute(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert env.path("LORAFORGE_P", Path("/default"), {"LORAFORGE_P": "data"}) == tmp_path / "data"


def test_path_expands_user(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert env.path("LORAFORGE_P", Path("/default"), {"LORAFORGE_P": "~/loras"}) == tmp_path / "loras"


def test_path_default_is_absolute(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert env.path("LORAFORGE_P", Path("rel"), {}) == tmp_path / "rel"


def test_path_list_uses_os_pathsep(tmp_path: Path):
    value = os.pathsep.join([str(tmp_path / "a"), "", f" {tmp_path / 'b'} "])
    assert env.path_list("LORAFORGE_LORA_DIRS", [], {"LORAFORGE_LORA_DIRS": value}) == [tmp_path / "a", tmp_path / "b"]


def test_path_list_default(tmp_path: Path):
    assert env.path_list("LORAFORGE_LORA_DIRS", [tmp_path / "loras"], {}) == [tmp_path / "loras"]


# --- choices and JSON ---------------------------------------------------------------------


def test_choice_is_case_insensitive_and_normalised():
    assert env.choice("LORAFORGE_C", "auto", ("auto", "on", "off"), {"LORAFORGE_C": "ON"}) == "on"


def test_choice_default():
    assert env.choice("LORAFORGE_C", "auto", ("auto", "on", "off"), {}) == "auto"


def test_bad_choice_lists_the_choices():
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_C: must be one of auto, on, off, got 'sometimes'"):
        env.choice("LORAFORGE_C", "auto", ("auto", "on", "off"), {"LORAFORGE_C": "sometimes"})


def test_json_object_parses():
    environ = {"LORAFORGE_RECO_WEIGHTS": '{"semantic": 0.5, "lexical": 0.1}'}
    assert env.json_object("LORAFORGE_RECO_WEIGHTS", environ) == {"semantic": 0.5, "lexical": 0.1}


def test_json_object_unset_is_none():
    assert env.json_object("LORAFORGE_RECO_WEIGHTS", {}) is None


@pytest.mark.parametrize("value", ["{bad", "NaN", "[1, 2]", '"text"', "3"])
def test_json_object_rejects_invalid_json_and_non_objects(value: str):
    with pytest.raises(ImproperlyConfigured, match=r"^LORAFORGE_RECO_WEIGHTS: expected a JSON object"):
        env.json_object("LORAFORGE_RECO_WEIGHTS", {"LORAFORGE_RECO_WEIGHTS": value})


# --- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["http://127.0.0.1:7860", "https://gpu.example/sdapi", "http://user:pass@[::1]:7860/", "HTTP://Host"]
)
def test_url_accepts_http_urls(value: str):
    assert env.url("SDNEXT_URL", {"SDNEXT_URL": value}, schemes=("http", "https")) == value


def test_url_unset_is_none():
    assert env.url("SDNEXT_URL", {}, schemes=("http", "https")) is None


@pytest.mark.parametrize(
    "value",
    [
        "ftp://host",
        "localhost:7860",
        "gpu.example",
        "http://",
        "http:///path-only",
        "http://host:port",
        "http://host:99999",
        "http://[::1",
    ],
)
def test_bad_url_names_the_variable(value: str):
    with pytest.raises(ImproperlyConfigured, match=r"^SDNEXT_URL: expected a URL with scheme http/https"):
        env.url("SDNEXT_URL", {"SDNEXT_URL": value}, schemes=("http", "https"))


def test_bad_url_error_does_not_echo_credentials():
    with pytest.raises(ImproperlyConfigured) as caught:
        env.url("REDIS_URL", {"REDIS_URL": "http://user:hunter2@host"}, schemes=("redis", "rediss"))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("value", ["redis://localhost:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/redis.sock"])
def test_redis_urls(value: str):
    assert env.url("REDIS_URL", {"REDIS_URL": value}, schemes=("redis", "rediss", "unix")) == value


# --- database -----------------------------------------------------------------------------


# Explicit ids: a bare "postgres" id would read as the postgres marker in tests/conftest.py.
@pytest.mark.parametrize("scheme", ["postgres", "postgresql"], ids=["scheme-postgres", "scheme-postgresql"])
def test_database_postgres_url(scheme: str, tmp_path: Path):
    environ = {"DATABASE_URL": f"{scheme}://forge:p%40ss@db.example:5433/lora%20forge"}
    config = env.database("DATABASE_URL", tmp_path / "db.sqlite3", environ)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert config["NAME"] == "lora forge"
    assert config["USER"] == "forge"
    assert config["PASSWORD"] == "p@ss"
    assert config["HOST"] == "db.example"
    assert config["PORT"] == "5433"
    # ASGI runs each request in its own thread: a pool, not persistent per-thread connections.
    assert config["CONN_MAX_AGE"] == 0
    assert config["OPTIONS"]["pool"]["max_size"] >= 8


def test_database_postgres_defaults_host_and_port(tmp_path: Path):
    config = env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"DATABASE_URL": "postgres:///forge"})
    assert (config["NAME"], config["HOST"], config["PORT"], config["USER"]) == ("forge", "", "", "")


def test_database_sqlite_url(tmp_path: Path):
    config = env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"DATABASE_URL": "sqlite:///srv/forge/db.sqlite3"})
    assert config["ENGINE"] == "loraforge.sqlite"
    assert config["NAME"] == "/srv/forge/db.sqlite3"
    assert config["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
    assert config["OPTIONS"]["timeout"] == 5
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]
    assert "foreign_keys=ON" in config["OPTIONS"]["init_command"]


def test_sqlite_page_cache_is_small_by_default_and_configurable(tmp_path: Path):
    default = env.database("DATABASE_URL", tmp_path / "db.sqlite3", {})
    assert "PRAGMA cache_size=-256;" in default["OPTIONS"]["init_command"]
    larger = env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"LORAFORGE_SQLITE_CACHE_KIB": "4096"})
    assert "PRAGMA cache_size=-4096;" in larger["OPTIONS"]["init_command"]
    with pytest.raises(ImproperlyConfigured):
        env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"LORAFORGE_SQLITE_CACHE_KIB": "8"})


def test_database_default_is_sqlite_in_the_data_dir(tmp_path: Path):
    config = env.database("DATABASE_URL", tmp_path / "db.sqlite3", {})
    assert config["ENGINE"] == "loraforge.sqlite"
    assert config["NAME"] == str(tmp_path / "db.sqlite3")


@pytest.mark.parametrize(
    "value",
    [
        "mysql://u:p@h/db",
        "postgres://host",
        "postgres://host/",
        "postgres://host:abc/db",
        "postgres://host:70000/db",
        "sqlite://",
        "sqlite:///",
        "sqlite://relative.db",
        "sqlite:relative.db",
        "not a url",
    ],
)
def test_bad_database_url_names_the_variable(value: str, tmp_path: Path):
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL: "):
        env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"DATABASE_URL": value})


def test_bad_database_url_does_not_echo_the_password(tmp_path: Path):
    with pytest.raises(ImproperlyConfigured) as caught:
        env.database("DATABASE_URL", tmp_path / "db.sqlite3", {"DATABASE_URL": "mysql://u:hunter2@h/db"})
    assert "hunter2" not in str(caught.value)


# --- start-up -----------------------------------------------------------------------------


def _manage(extra: dict[str, str], tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    environ.update({"LORAFORGE_DATA_DIR": str(tmp_path), "LORAFORGE_LOG_LEVEL": "warning", **extra})
    for name in ("DATABASE_URL", "LORAFORGE_API_KEY", "API_KEY"):
        if name not in extra:
            environ.pop(name, None)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_bad_variable_stops_start_up_naming_it(tmp_path: Path):
    result = _manage({"LORAFORGE_SCAN_WORKERS": "abc"}, tmp_path, "check")
    assert result.returncode != 0
    assert "LORAFORGE_SCAN_WORKERS" in result.stderr
    assert "ImproperlyConfigured" in result.stderr


@pytest.mark.slow
def test_good_configuration_passes_the_check(tmp_path: Path):
    result = _manage({"LORAFORGE_SCAN_WORKERS": "8"}, tmp_path, "check")
    assert result.returncode == 0, result.stderr


PRINT_KEY = "from django.conf import settings; print(settings.LORAFORGE_API_KEY)"


@pytest.mark.slow
def test_settings_read_the_api_key_alias(tmp_path: Path):
    result = _manage({"API_KEY": "legacy-key"}, tmp_path, "shell", "-v", "0", "-c", PRINT_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "legacy-key"


@pytest.mark.slow
def test_settings_read_the_api_key_file(tmp_path: Path):
    key_file = tmp_path / "api_key"
    key_file.write_text("file-key\n", encoding="utf-8")
    result = _manage({"LORAFORGE_API_KEY_FILE": str(key_file)}, tmp_path, "shell", "-v", "0", "-c", PRINT_KEY)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "file-key"
