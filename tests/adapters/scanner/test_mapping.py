"""Field mapping from sidecars and header (SPEC 6.6.4) and the never-overwrite rules (SPEC 6.6.7).

Every test writes a real LoRA file and real sidecars into a temporary LoRA folder and runs the same pipeline a scan
runs: ``inspect_file`` (header + hash), ``find_sidecars``/``read_sidecars``, ``map_fields``.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.models import Adapter
from adapters.scanner.mapping import ImportedFields, apply_imported, map_fields
from adapters.scanner.sidecars import find_sidecars, read_sidecars
from tests.lora_files import inspect_file, metadata_of, write_safetensors
from tests.sidecar_files import a1111, civitai_file, civitai_model, civitai_version, lora_manager, write_json

STEM = "celestial_anime_v2"
HEADER_TRIGGERS = ["celestial style"]  # from ss_tag_frequency folder "10_celestial style"
IMPORT_OWNED_KEYS = {
    "author_username", "published_at", "stats", "civitai_version_id", "civitai_model_id", "civitai_match",
    "primary_file_name", "primary_file_size_kb", "primary_file_sha256", "primary_file_download_url", "preview_path",
    "extra", "json_file_path", "json_file_mtime", "json_file_size", "sidecars",
}  # fmt: skip


@pytest.fixture
def model(lora_dir: Path) -> Path:
    return write_safetensors(lora_dir / f"{STEM}.safetensors", metadata_of())


@pytest.fixture
def bare_model(lora_dir: Path) -> Path:
    return write_safetensors(lora_dir / "bare.safetensors", None, seed=3)


def sha_of(model: Path) -> str:
    sha = inspect_file(model, compute_hash=True).sha256
    assert sha is not None
    return sha


def imported(model: Path, *, sha256: str | None = "computed") -> ImportedFields:
    facts = inspect_file(model, compute_hash=True)
    digest = facts.sha256 if sha256 == "computed" else sha256
    return map_fields(
        model_path=model,
        sidecars=read_sidecars(find_sidecars(model)),
        header=facts.header.metadata,
        header_fields=facts.fields,
        sha256=digest,
        autov2=digest[:10] if digest else None,
        autov3=facts.fields.autov3,
    )


def values(model: Path, **kwargs: Any) -> dict[str, Any]:
    return imported(model, **kwargs).values


def sidecar(model: Path, suffix: str, data: Any) -> Path:
    return write_json(model.parent / f"{model.stem}{suffix}", data)


def matching_version(model: Path, **overrides: Any) -> dict[str, Any]:
    return civitai_version(**{"files": [civitai_file(sha256=sha_of(model))], **overrides})


# --- fallbacks and omission ------------------------------------------------------------------------------------


def test_no_sidecars_and_no_header_gives_fallbacks_and_omits_empty_curatable_fields(bare_model: Path) -> None:
    result = imported(bare_model)

    assert result.values == {
        "name": "bare",
        "author_username": None,
        "published_at": None,
        "stats": None,
        "civitai_version_id": None,
        "civitai_model_id": None,
        "civitai_match": "none",
        "primary_file_name": None,
        "primary_file_size_kb": None,
        "primary_file_sha256": None,
        "primary_file_download_url": None,
        "preview_path": None,
        "extra": None,
        "json_file_path": None,
        "json_file_mtime": None,
        "json_file_size": None,
        "sidecars": [],
    }
    assert result.warnings == ()


def test_header_only_fields(model: Path) -> None:
    result = values(model)

    assert result["name"] == "celestial_anime_v2"  # ss_output_name
    assert result["trained_words"] == HEADER_TRIGGERS
    assert (result["base_model"], result["base_family"], result["sd_version"]) == ("SDXL 1.0", "sdxl", "SDXL 1.0")
    assert "tags" not in result
    assert "version" not in result
    assert result.keys() >= IMPORT_OWNED_KEYS


def test_modelspec_keys_fill_name_description_author_tags_and_date(lora_dir: Path) -> None:
    path = write_safetensors(
        lora_dir / "spec.safetensors",
        {
            "modelspec.title": "Spec Title",
            "ss_output_name": "output",
            "modelspec.description": "Spec description",
            "modelspec.author": "spec author",
            "modelspec.tags": "Anime, Night  Sky,,anime",
            "modelspec.date": "2024-02-03",
            "modelspec.architecture": "flux-1-dev/lora",
            "modelspec.trigger_phrase": "spec trigger, second",
        },
    )

    result = values(path)

    assert result["name"] == "Spec Title"
    assert result["description"] == "Spec description"
    assert result["author_username"] == "spec author"
    assert result["tags"] == ["anime", "night sky"]
    assert result["published_at"] == datetime(2024, 2, 3, tzinfo=UTC)
    assert result["trained_words"] == ["spec trigger", "second"]
    assert (result["base_family"], result["base_model"]) == ("flux1", "Flux.1")


# --- one column at a time --------------------------------------------------------------------------------------


def test_civitai_info_column(model: Path) -> None:
    sha = sha_of(model)
    sidecar(model, ".civitai.info", matching_version(model))

    result = values(model)

    assert result["name"] == "Celestial Anime"
    assert result["version"] == "v2.0"
    assert result["description"] == "<p>Second version with better stars.</p>"
    assert result["author_username"] == "stargazer"
    assert result["tags"] == ["anime", "stars"]
    assert result["trained_words"] == ["celestial style", "star-filled sky"]
    assert (result["base_model"], result["base_family"], result["sd_version"]) == ("SDXL 1.0", "sdxl", "SDXL 1.0")
    assert result["published_at"] == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert result["nsfw_level"] == 1
    assert result["stats"] == {"downloadCount": 15234, "ratingCount": 87, "rating": 4.9, "thumbsUpCount": 1290}
    assert result["supports_generation"] is True
    assert (result["civitai_version_id"], result["civitai_model_id"]) == (298654, 265478)
    assert result["civitai_match"] == "sha256"
    assert result["primary_file_name"] == "celestial_anime_v2.safetensors"
    assert result["primary_file_size_kb"] == 223084
    assert result["primary_file_sha256"] == sha
    assert result["primary_file_download_url"] == "https://civitai.com/api/download/models/298654"


def test_civitai_info_published_at_falls_back_to_created_at(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, publishedAt="not a date"))

    assert values(model)["published_at"] == datetime(2024, 1, 2, 10, 0, tzinfo=UTC)


def test_civitai_model_column_uses_the_matched_version(model: Path) -> None:
    newest = civitai_version(id=2, name="v3", trainedWords=["newest"], baseModel="Pony", publishedAt="2024-06-01")
    matched = matching_version(model, id=1, name="v2", nsfwLevel=4, baseModel="Illustrious")
    sidecar(model, ".json", civitai_model(versions=[newest, matched]))

    result = values(model)

    assert result["name"] == "Celestial Anime"
    assert result["version"] == "v2"
    assert result["description"] == "<p>Anime characters under starry skies.</p>"
    assert result["author_username"] == "stargazer"
    assert result["tags"] == ["anime", "style", "stars"]
    assert result["trained_words"] == ["celestial style", "star-filled sky"]
    assert (result["base_model"], result["base_family"]) == ("Illustrious", "sdxl")
    assert result["published_at"] == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert result["nsfw_level"] == 4
    assert result["stats"]["favoriteCount"] == 512  # model-level stats
    assert (result["civitai_version_id"], result["civitai_model_id"], result["civitai_match"]) == (1, 265478, "sha256")
    assert result["json_file_path"] == str(model.parent / f"{STEM}.json")


def test_civitai_model_without_a_matching_version_still_applies_model_level_fields(model: Path) -> None:
    other = [civitai_file(sha256="ab" * 32, name="x.safetensors")]
    versions = [civitai_version(id=2, files=other, trainedWords=["v2"]), civitai_version(id=1, files=other)]
    sidecar(model, ".json", civitai_model(versions=versions, nsfwLevel=8))

    result = imported(model)

    assert result.values["civitai_match"] == "none"
    assert result.values["civitai_version_id"] is None
    assert result.values["civitai_model_id"] == 265478
    assert result.values["name"] == "Celestial Anime"
    assert result.values["tags"] == ["anime", "style", "stars"]
    assert result.values["nsfw_level"] == 8
    assert "version" not in result.values
    assert result.values["trained_words"] == HEADER_TRIGGERS  # no version-level trainedWords
    assert result.values["published_at"] is None
    assert result.values["primary_file_name"] is None
    assert result.warnings == ("No Civitai version matches this file",)


def test_lora_manager_column(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(civitai=matching_version(model, name="v2-lm", nsfwLevel=None)))

    result = values(model)

    assert result["name"] == "Celestial Anime (LM)"
    assert result["version"] == "v2-lm"
    assert result["description"] == "<p>LM description</p>"
    assert result["author_username"] == "stargazer"
    assert result["tags"] == ["anime", "night"]
    assert result["trained_words"] == ["celestial style", "star-filled sky"]
    assert result["notes"] == "Works best at 0.7."
    assert result["preferred_weight"] == 0.7
    assert (result["base_model"], result["base_family"], result["sd_version"]) == ("Illustrious", "sdxl", "Illustrious")
    assert result["nsfw_level"] == 2  # preview_nsfw_level after civitai.nsfwLevel
    assert result["published_at"] == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert result["stats"]["downloadCount"] == 15234
    assert "supports_generation" not in result  # not in the Lora-Manager column
    assert (result["civitai_version_id"], result["civitai_model_id"], result["civitai_match"]) == (
        298654,
        265478,
        "sha256",
    )
    assert result["json_file_path"] == str(model.parent / f"{STEM}.metadata.json")


def test_lora_manager_unknown_base_model_is_ignored(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(base_model="Unknown", civitai={}))

    result = values(model)

    assert (result["base_model"], result["base_family"]) == ("SDXL 1.0", "sdxl")  # from the header


def test_lora_manager_civitai_without_id_or_files_claims_no_match(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(civitai={"trainedWords": ["my trigger"]}))

    result = values(model)

    assert result["trained_words"] == ["my trigger"]
    assert result["civitai_match"] == "none"
    assert result["civitai_version_id"] is None


def test_a1111_column(model: Path) -> None:
    sidecar(model, ".json", a1111())

    result = values(model)

    assert result["description"] == "A1111 description"
    assert result["activation_text"] == "celestial style, glowing stars"
    assert result["negative_text"] == "lowres, bad anatomy"
    assert result["notes"] == "A1111 notes"
    assert result["preferred_weight"] == 0.8
    assert result["sd_version"] == "SDXL"
    assert result["json_file_path"] == str(model.parent / f"{STEM}.json")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"preferred weight": 0, "weight": 0.6, "default_weight": 0.4}, 0.6),
        ({"preferred weight": 0, "default_weight": 0.4}, 0.4),
        ({"weight": "0.65"}, 0.65),
        ({"preferred weight": 0}, None),
        ({"preferred weight": "heavy", "weight": True}, None),
        ({"preferred weight": -1.5}, -1.5),
    ],
)
def test_a1111_preferred_weight_sources(model: Path, document: dict[str, Any], expected: float | None) -> None:
    sidecar(model, ".json", document)

    assert values(model).get("preferred_weight") == expected


def test_a1111_sd_version_steers_base_family(bare_model: Path) -> None:
    sidecar(bare_model, ".json", a1111(**{"sd version": "SD1"}))

    result = values(bare_model)

    assert (result["sd_version"], result["base_family"], result["base_model"]) == ("SD1", "sd1", "SD 1.5")


def test_a1111_unknown_sd_version_is_no_value(model: Path) -> None:
    sidecar(model, ".json", a1111(**{"sd version": "Unknown"}))

    assert values(model)["sd_version"] == "SDXL 1.0"


# --- precedence ------------------------------------------------------------------------------------------------


def test_column_order_peeled_one_source_at_a_time(lora_dir: Path) -> None:
    path = write_safetensors(
        lora_dir / "peel.safetensors", {"modelspec.description": "spec", "modelspec.title": "Spec Title"}
    )
    sidecar(path, ".metadata.json", lora_manager(modelDescription="lm", civitai={}))
    sidecar(path, ".civitai.info", civitai_version(description="info"))
    sidecar(path, ".json", civitai_model(description="model", name="Model Name"))
    assert (values(path)["description"], values(path)["name"]) == ("lm", "Celestial Anime (LM)")

    sidecar(path, ".metadata.json", lora_manager(modelDescription="", model_name=None, civitai={}))
    assert (values(path)["description"], values(path)["name"]) == ("info", "Celestial Anime")

    sidecar(path, ".civitai.info", civitai_version(description=5, model={"name": " "}))
    assert (values(path)["description"], values(path)["name"]) == ("model", "Model Name")

    sidecar(path, ".json", a1111(description="a1111"))
    assert (values(path)["description"], values(path)["name"]) == ("a1111", "Spec Title")

    sidecar(path, ".json", a1111(description="   "))
    assert values(path)["description"] == "spec"


def test_precedence_for_each_shared_field(model: Path) -> None:
    sha = sha_of(model)
    lm_version = civitai_version(id=11, modelId=21, name="lm", files=[civitai_file(sha256=sha)], nsfwLevel=None)
    sidecar(model, ".metadata.json", lora_manager(civitai=lm_version, preview_nsfw_level=None))
    sidecar(model, ".civitai.info", civitai_version(id=12, modelId=22, name="info", nsfwLevel=16, baseModel="Pony"))
    sidecar(model, ".json", a1111(description="a1111", notes="a1111 notes", **{"preferred weight": 1.3}))

    result = values(model)

    assert result["version"] == "lm"
    assert result["description"] == "<p>LM description</p>"
    assert result["notes"] == "Works best at 0.7."  # Lora-Manager before A1111
    assert result["preferred_weight"] == 1.3  # A1111 wins
    assert result["sd_version"] == "SDXL"  # A1111 wins
    assert result["base_model"] == "Illustrious"  # Lora-Manager before .civitai.info
    assert result["nsfw_level"] == 16  # empty in Lora-Manager: next column
    assert (result["civitai_version_id"], result["civitai_model_id"]) == (11, 21)
    assert result["civitai_match"] == "sha256"  # Lora-Manager's version decides the match
    assert result["json_file_path"] == str(model.parent / f"{STEM}.civitai.info")


def test_json_file_path_order(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager())
    sidecar(model, ".json", a1111())
    assert values(model)["json_file_path"] == str(model.parent / f"{STEM}.metadata.json")

    path = sidecar(model, ".json", civitai_model())
    result = values(model)
    assert result["json_file_path"] == str(path)
    assert result["json_file_size"] == path.stat().st_size
    assert result["json_file_mtime"] == datetime.fromtimestamp(path.stat().st_mtime_ns // 1000 / 1e6, tz=UTC)


def test_sidecars_listing_is_mapped(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager())
    sidecar(model, ".civitai.info", "not an object")

    result = imported(model)

    assert [entry["kind"] for entry in result.values["sidecars"]] == ["lora_manager"]
    assert result.warnings[0] == f"Invalid sidecar {STEM}.civitai.info: not a JSON object"


# --- matching and warnings -------------------------------------------------------------------------------------


def test_unverified_civitai_info_is_used_with_a_warning(model: Path) -> None:
    sidecar(model, ".civitai.info", civitai_version(files=[civitai_file(sha256="cd" * 32)]))

    result = imported(model)

    assert result.values["civitai_match"] == "unverified"
    assert result.values["version"] == "v2.0"
    assert result.values["primary_file_sha256"] == "cd" * 32
    assert result.warnings == ("Civitai metadata hash does not match the file",)


def test_match_by_autov3_from_the_header(model: Path) -> None:
    files = [{"name": "renamed.safetensors", "sizeKB": 1, "hashes": {"AutoV3": "5BE1B2C3D4E5"}}]
    sidecar(model, ".json", civitai_model(versions=[civitai_version(id=1, files=files), civitai_version(id=2)]))

    result = values(model)

    assert (result["civitai_match"], result["civitai_version_id"]) == ("autov3", 1)


def test_lora_manager_sha256_differing_from_the_file_warns(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(sha256="ef" * 32, civitai={}))

    assert imported(model).warnings == ("Sidecar sha256 differs from the file",)


def test_lora_manager_sha256_compared_ignoring_case(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(sha256=sha_of(model).upper(), civitai={}))

    assert imported(model).warnings == ()


def test_repeated_warnings_are_reported_once(model: Path) -> None:
    mismatching = civitai_version(files=[civitai_file(sha256="cd" * 32)])
    sidecar(model, ".metadata.json", lora_manager(civitai=mismatching, sha256=None))
    sidecar(model, ".civitai.info", mismatching)

    assert imported(model).warnings == ("Civitai metadata hash does not match the file",)


# --- primary file, preview, extra ------------------------------------------------------------------------------


@pytest.mark.parametrize(("size_kb", "expected"), [(10.5, 11), (10.49, 10), (0.5, 1), (7, 7), ("7", None), (-1, None)])
def test_primary_file_size_kb_rounds_half_up(model: Path, size_kb: Any, expected: int | None) -> None:
    sidecar(model, ".civitai.info", civitai_version(files=[civitai_file(sha256=sha_of(model), sizeKB=size_kb)]))

    assert values(model)["primary_file_size_kb"] == expected


def test_primary_file_fields_ignore_malformed_values(model: Path) -> None:
    entry = civitai_file(sha256=sha_of(model), downloadUrl="javascript:alert(1)")
    entry["name"] = 5
    entry["hashes"]["SHA256"] = "xyz"
    sidecar(model, ".civitai.info", civitai_version(files=[entry], downloadUrl=None))

    result = values(model)

    assert result["civitai_match"] == "autov2"
    assert (result["primary_file_name"], result["primary_file_sha256"], result["primary_file_download_url"]) == (
        None,
        None,
        None,
    )


def test_discovered_preview_is_the_preview_path(model: Path) -> None:
    preview = model.parent / f"{STEM}.preview.png"
    preview.write_bytes(b"img")

    assert values(model)["preview_path"] == str(preview)


def test_lora_manager_preview_url_inside_a_root_wins(model: Path) -> None:
    (model.parent / f"{STEM}.png").write_bytes(b"img")
    chosen = model.parent / "previews" / "chosen.webp"
    chosen.parent.mkdir()
    chosen.write_bytes(b"img")
    sidecar(model, ".metadata.json", lora_manager(preview_url=str(chosen)))

    assert values(model)["preview_path"] == str(chosen)


@pytest.mark.parametrize("where", ["outside", "missing", "escaping link", "not a string"])
def test_lora_manager_preview_url_outside_roots_or_missing_is_ignored(model: Path, tmp_path: Path, where: str) -> None:
    discovered = model.parent / f"{STEM}.jpg"
    discovered.write_bytes(b"img")
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"img")
    link = model.parent / "link.png"
    link.symlink_to(outside)
    url = {"outside": str(outside), "missing": str(model.parent / "gone.png"), "escaping link": str(link)}.get(where, 5)
    sidecar(model, ".metadata.json", lora_manager(preview_url=url))

    assert values(model)["preview_path"] == str(discovered)


def test_extra_groups_unmapped_top_level_keys_by_kind(model: Path) -> None:
    sidecar(model, ".metadata.json", {"model_name": "n", "favorite": True, "folder": "x"})
    sidecar(model, ".civitai.info", {"name": "v", "air": "urn:air:x", "model": {"name": "m", "extra": 1}})
    sidecar(model, ".json", {"notes": "n", "sd version": "SDXL", "custom": [1, 2]})

    assert values(model)["extra"] == {
        "lora_manager": {"favorite": True, "folder": "x"},
        "civitai_info": {"air": "urn:air:x"},
        "a1111": {"custom": [1, 2]},
    }


def test_extra_is_null_without_unmapped_keys(model: Path) -> None:
    sidecar(model, ".json", a1111())

    assert values(model)["extra"] is None


def test_extra_over_64_kib_drops_its_largest_keys_with_a_warning(model: Path) -> None:
    sidecar(model, ".json", a1111(history="x" * 70_000, small="kept"))

    result = imported(model)

    assert result.values["extra"] == {"a1111": {"small": "kept"}}
    assert result.warnings == ("Unmapped sidecar keys over 64 KiB not stored: a1111.history",)
    assert result.values["activation_text"] == "celestial style, glowing stars"


def test_nul_characters_are_removed_from_text_and_json(model: Path) -> None:
    sidecar(model, ".json", {"notes": "a\u0000b", "odd\u0000key": "v\u0000"})

    result = values(model)

    assert result["notes"] == "ab"
    assert result["extra"] == {"a1111": {"oddkey": "v"}}


# --- limits ----------------------------------------------------------------------------------------------------


def test_text_limits_hold(model: Path) -> None:
    version = matching_version(model, name="v" * 150, description="d" * 60_000, creator={"username": "u" * 200})
    version["model"]["name"] = "  " + "n" * 300
    sidecar(model, ".civitai.info", version)
    sidecar(model, ".json", {"activation text": "a" * 6000, "negative text": "n" * 6000, "notes": "x" * 11_000})

    result = values(model)

    assert len(result["name"]) == 255
    assert result["name"].startswith("n")
    assert len(result["version"]) == 100
    assert len(result["description"]) == 50_000
    assert len(result["author_username"]) == 150
    assert (len(result["activation_text"]), len(result["negative_text"]), len(result["notes"])) == (5000, 5000, 10_000)


def test_tag_limits_hold(model: Path) -> None:
    many = [f"Tag {index}" for index in range(150)]
    sidecar(model, ".metadata.json", lora_manager(tags=["x" * 65, " Mixed   CASE ", "mixed case", "", *many]))

    result = values(model)["tags"]

    assert result[0] == "mixed case"
    assert "x" * 65 not in result
    assert len(result) == 100
    assert all(1 <= len(tag) <= 64 for tag in result)


def test_trained_word_limits_hold(model: Path) -> None:
    words = ["  keep  ", "keep", "w" * 201, "", 7, *[f"word {index}" for index in range(250)]]
    sidecar(model, ".civitai.info", matching_version(model, trainedWords=words))

    result = values(model)["trained_words"]

    assert result[0] == "keep"
    assert len(result) == 200
    assert all(1 <= len(word) <= 200 for word in result)


def test_long_base_model_label_is_truncated(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, baseModel="Pony " + "x" * 100))

    result = values(model)

    assert len(result["base_model"]) == 64
    assert len(result["sd_version"]) == 64
    assert result["base_family"] == "sdxl"


def test_other_ecosystem_label_is_family_other(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, baseModel="Wan Video 14B"))

    result = values(model)

    assert (result["base_model"], result["base_family"]) == ("Wan Video 14B", "other")


# --- bad input -------------------------------------------------------------------------------------------------


JUNK_VALUES: list[Any] = [None, 5, -1, 2**40, 1.5, True, "x", "", [], [1, None, {}], {}, {"name": 5}]
JUNK_VALUES.append(["a", {"name": "b"}, {"name": 1}])


@pytest.mark.parametrize("junk", JUNK_VALUES, ids=repr)
def test_values_of_the_wrong_type_are_ignored_never_an_error(model: Path, junk: Any) -> None:
    def spoil(document: dict[str, Any]) -> dict[str, Any]:
        return dict.fromkeys(document, junk)

    sidecar(model, ".metadata.json", spoil(lora_manager()) | {"exclude": False})
    sidecar(model, ".civitai.info", spoil(civitai_version()))
    sidecar(model, ".json", spoil(civitai_model()) | {"modelVersions": [spoil(civitai_version())]})

    result = values(model)

    assert isinstance(result["name"], str)
    assert all(isinstance(tag, str) for tag in result.get("tags", []))
    assert all(isinstance(word, str) for word in result.get("trained_words", []))
    assert result["civitai_version_id"] is None or isinstance(result["civitai_version_id"], int)


def test_specific_wrong_types_are_ignored(model: Path) -> None:
    version = matching_version(model, trainedWords="x", nsfwLevel="4", id="12", stats=[1], supportsGeneration="yes")
    version["model"] = {"name": ["list"], "tags": 5}
    sidecar(model, ".civitai.info", version | {"creator": "someone", "publishedAt": 5, "createdAt": "31/12/2024"})

    result = values(model)

    assert result["name"] == "celestial_anime_v2"  # header output name
    assert result["trained_words"] == HEADER_TRIGGERS
    assert "tags" not in result
    assert "nsfw_level" not in result
    assert "supports_generation" not in result
    assert (result["civitai_version_id"], result["stats"], result["published_at"]) == (None, None, None)
    assert result["author_username"] is None
    assert result["civitai_match"] == "sha256"


def test_usage_tips_that_are_not_json_are_ignored(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(usage_tips="{broken", civitai={}))
    assert "preferred_weight" not in values(model)

    sidecar(model, ".metadata.json", lora_manager(usage_tips={"strength": 1.2}, civitai={}))
    assert values(model)["preferred_weight"] == 1.2


def test_nsfw_level_out_of_range_is_ignored(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, nsfwLevel=64))
    sidecar(model, ".json", civitai_model(versions=[civitai_version(nsfwLevel=None)], nsfwLevel=4.0))

    assert values(model)["nsfw_level"] == 4


def test_published_at_with_offset_is_converted_to_utc(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, publishedAt="2024-01-03T14:30:00+02:00"))

    published = values(model)["published_at"]

    assert published == datetime(2024, 1, 3, 12, 30, tzinfo=UTC)
    assert published.utcoffset().total_seconds() == 0


def test_oversized_stats_are_dropped(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model, stats={"blob": "x" * 70_000}))

    assert values(model)["stats"] is None


def test_mapping_without_a_hash_matches_by_file_name_only(model: Path) -> None:
    files = [civitai_file(name=f"{STEM.upper()}.SAFETENSORS", sha256="ab" * 32)]
    sidecar(model, ".json", civitai_model(versions=[civitai_version(id=1, files=files), civitai_version(id=2)]))

    result = values(model, sha256=None)

    assert (result["civitai_match"], result["civitai_version_id"]) == ("filename", 1)


# --- apply_imported (SPEC 6.6.7) -------------------------------------------------------------------------------


def _imported(**values: Any) -> ImportedFields:
    return ImportedFields(values=values, warnings=())


def test_apply_on_create_sets_fields_and_user_owned_defaults(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model))
    sidecar(model, ".json", a1111())
    adapter = Adapter(file_path=str(model), locked_fields=["name"])

    changed = apply_imported(adapter, imported(model), creating=True)

    assert adapter.name == "Celestial Anime"  # locking is ignored on create
    assert adapter.weight == 0.8
    assert (adapter.active, adapter.ordinal, adapter.locked_fields) == (False, None, [])
    assert adapter.civitai_version_id == 298654
    assert {"name", "weight", "locked_fields", "tags", "civitai_version_id", "sidecars"} <= changed
    assert "active" not in changed


@pytest.mark.parametrize(("preferred", "weight"), [(5.0, 5.0), (-5.0, -5.0), (5.5, 1.0), (None, 1.0)])
def test_apply_on_create_weight_is_preferred_weight_within_bounds(preferred: float | None, weight: float) -> None:
    adapter = Adapter()

    apply_imported(adapter, _imported(name="a", preferred_weight=preferred), creating=True)

    assert adapter.weight == weight


def test_apply_on_update_keeps_locked_fields(model: Path) -> None:
    sidecar(model, ".civitai.info", matching_version(model))
    adapter = Adapter(name="Mine", tags=["curated"], description="old", locked_fields=["name", "tags"])

    changed = apply_imported(adapter, imported(model), creating=False)

    assert (adapter.name, adapter.tags) == ("Mine", ["curated"])
    assert adapter.description == "<p>Second version with better stars.</p>"
    assert "name" not in changed
    assert "description" in changed


def test_apply_on_update_never_clears_with_empty_values() -> None:
    adapter = Adapter(
        name="Kept",
        tags=["kept"],
        description="kept",
        nsfw_level=4,
        author_username="author",
        published_at=datetime(2024, 1, 1, tzinfo=UTC),
        civitai_version_id=5,
    )

    changed = apply_imported(
        adapter,
        _imported(name="", tags=[], description=None, author_username=None, published_at=None, civitai_version_id=None),
        creating=False,
    )

    assert (adapter.name, adapter.tags, adapter.description, adapter.nsfw_level) == ("Kept", ["kept"], "kept", 4)
    assert (adapter.author_username, adapter.published_at) == ("author", datetime(2024, 1, 1, tzinfo=UTC))
    assert adapter.civitai_version_id is None  # import-owned: always refreshed
    assert changed == {"civitai_version_id"}


def test_apply_on_update_never_touches_user_owned_fields() -> None:
    adapter = Adapter(name="a", active=True, weight=2.0, ordinal=3, locked_fields=["notes"])

    changed = apply_imported(
        adapter,
        _imported(preferred_weight=0.5, active=False, weight=1.0, ordinal=None, locked_fields=[]),
        creating=False,
    )

    assert (adapter.active, adapter.weight, adapter.ordinal, adapter.locked_fields) == (True, 2.0, 3, ["notes"])
    assert adapter.preferred_weight == 0.5
    assert changed == {"preferred_weight"}


def test_apply_returns_nothing_when_values_are_unchanged(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(civitai=matching_version(model)))
    sidecar(model, ".json", civitai_model())
    adapter = Adapter(file_path=str(model))
    apply_imported(adapter, imported(model), creating=True)

    assert apply_imported(adapter, imported(model), creating=False) == set()


@pytest.mark.django_db
def test_apply_is_stable_across_a_database_round_trip(model: Path) -> None:
    sidecar(model, ".metadata.json", lora_manager(civitai=matching_version(model)))
    sidecar(model, ".civitai.info", matching_version(model))
    sidecar(model, ".json", a1111(extra_key={"nested": [1, 2.5, "x"]}))
    (model.parent / f"{STEM}.preview.png").write_bytes(b"img")
    adapter = Adapter(file_path=str(model), sdnext_name=STEM)
    apply_imported(adapter, imported(model), creating=True)
    adapter.save()

    stored = Adapter.objects.get(pk=adapter.pk)

    assert apply_imported(stored, imported(model), creating=False) == set()


def test_apply_refreshes_sidecar_listing_when_a_sidecar_changes(model: Path) -> None:
    path = sidecar(model, ".json", a1111())
    adapter = Adapter(file_path=str(model))
    apply_imported(adapter, imported(model), creating=True)
    path.write_text(json.dumps(a1111(notes="changed notes")))
    os.utime(path, ns=(path.stat().st_mtime_ns + 10**9,) * 2)

    changed = apply_imported(adapter, imported(model), creating=False)

    assert changed == {"notes", "sidecars", "json_file_size", "json_file_mtime"}
