"""Civitai version matching by hash (SPEC 6.6.4)."""

from __future__ import annotations

import hashlib

from adapters.scanner.civitai import match_model_version, match_single_version, primary_file
from tests.sidecar_files import civitai_file, civitai_model, civitai_version

SHA_OLD = hashlib.sha256(b"old").hexdigest()
SHA_NEW = hashlib.sha256(b"new").hexdigest()
SHA_OTHER = hashlib.sha256(b"other").hexdigest()
AUTOV3 = "5be1b2c3d4e5"


def _two_versions(**old_file) -> dict:
    newest = civitai_version(id=2, name="v2", files=[civitai_file(name="celestial_v2.safetensors", sha256=SHA_NEW)])
    older = civitai_version(id=1, name="v1", files=[civitai_file(**{"name": "celestial_v1.safetensors", **old_file})])
    return civitai_model(versions=[newest, older])


def _match_model(model: dict, *, sha256=None, autov2=None, autov3=None, file_name="local.safetensors"):
    return match_model_version(model, sha256=sha256, autov2=autov2, autov3=autov3, file_name=file_name)


def _match_single(version: dict, *, sha256=None, autov2=None, autov3=None, file_name="local.safetensors"):
    return match_single_version(version, sha256=sha256, autov2=autov2, autov3=autov3, file_name=file_name)


def test_model_matches_an_older_version_by_upper_case_sha256() -> None:
    model = _two_versions(sha256=SHA_OLD)

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10])

    assert result.match == "sha256"
    assert result.version["id"] == 1
    assert result.primary_file["name"] == "celestial_v1.safetensors"
    assert result.warnings == ()


def test_model_matches_by_autov2_when_no_sha256_is_listed() -> None:
    model = _two_versions(sha256=SHA_OLD)
    del model["modelVersions"][1]["files"][0]["hashes"]["SHA256"]

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10])

    assert (result.match, result.version["id"]) == ("autov2", 1)


def test_model_matches_by_autov3() -> None:
    model = _two_versions(sha256=SHA_OTHER, autov3=AUTOV3)

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10], autov3=AUTOV3.upper())

    assert (result.match, result.version["id"]) == ("autov3", 1)


def test_model_sha256_match_in_any_version_beats_autov2_in_an_earlier_one() -> None:
    model = _two_versions(sha256=SHA_OLD)
    model["modelVersions"][0]["files"][0]["hashes"] = {"AutoV2": SHA_OLD[:10]}

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10])

    assert (result.match, result.version["id"]) == ("sha256", 1)


def test_model_matches_by_file_name_ignoring_case() -> None:
    model = _two_versions(sha256=SHA_OTHER)

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10], file_name="Celestial_V1.SafeTensors")

    assert (result.match, result.version["id"]) == ("filename", 1)
    assert result.primary_file["name"] == "celestial_v1.safetensors"


def test_model_with_one_version_and_no_match_uses_it() -> None:
    model = civitai_model(versions=[civitai_version(files=[civitai_file(sha256=SHA_OTHER)])])

    result = _match_model(model, sha256=SHA_OLD)

    assert result.match == "single_version"
    assert result.version["id"] == 298654
    assert result.primary_file is not None
    assert result.warnings == ()


def test_model_with_several_versions_and_no_match_applies_no_version() -> None:
    model = _two_versions(sha256=SHA_OTHER)

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10], autov3=AUTOV3)

    assert result.version is None
    assert result.match == "none"
    assert result.primary_file is None
    assert result.warnings == ("No Civitai version matches this file",)


def test_model_without_usable_versions_is_none() -> None:
    for versions in ([], "x", [1, "a", None]):
        result = _match_model(civitai_model(modelVersions=versions), sha256=SHA_OLD)
        assert (result.version, result.match) == (None, "none")


def test_model_ignores_malformed_files_and_hashes() -> None:
    version = civitai_version(files=["x", {"hashes": "nope"}, {"hashes": {"SHA256": 5}}, {"name": 7}])
    model = civitai_model(versions=[version, civitai_version(id=2, files="nope")])

    result = _match_model(model, sha256=SHA_OLD, autov2=SHA_OLD[:10], autov3=AUTOV3)

    assert result.match == "none"


def test_single_version_matched_by_sha256() -> None:
    version = civitai_version(files=[civitai_file(name="a.pt", sha256=SHA_OTHER), civitai_file(sha256=SHA_OLD)])

    result = _match_single(version, sha256=SHA_OLD)

    assert result.match == "sha256"
    assert result.primary_file["hashes"]["SHA256"] == SHA_OLD.upper()


def test_single_version_matched_by_lower_case_hash_key_and_autov2() -> None:
    version = civitai_version(files=[{"name": "x.safetensors", "hashes": {"autov2": SHA_OLD[:10]}}])

    assert _match_single(version, sha256=SHA_NEW, autov2=SHA_OLD[:10]).match == "autov2"


def test_single_version_with_mismatching_hashes_is_unverified_but_used() -> None:
    version = civitai_version(files=[civitai_file(sha256=SHA_OTHER)])

    result = _match_single(version, sha256=SHA_OLD, autov2=SHA_OLD[:10], file_name="celestial_anime_v2.safetensors")

    assert result.match == "unverified"
    assert result.version is version
    assert result.primary_file["name"] == "celestial_anime_v2.safetensors"
    assert result.warnings == ("Civitai metadata hash does not match the file",)


def test_single_version_without_hashes_matches_by_file_name() -> None:
    version = civitai_version(files=[{"name": "LOCAL.safetensors", "sizeKB": 1}])

    assert _match_single(version, sha256=SHA_OLD, file_name="local.safetensors").match == "filename"


def test_single_version_without_files_is_single_version() -> None:
    result = _match_single(civitai_version(files=[]), sha256=SHA_OLD)

    assert (result.match, result.primary_file, result.warnings) == ("single_version", None, ())


def test_single_version_hashes_of_kinds_not_computed_do_not_make_it_unverified() -> None:
    version = civitai_version(files=[{"name": "x.safetensors", "hashes": {"CRC32": "0BADF00D"}}])

    assert _match_single(version, sha256=SHA_OLD, autov2=SHA_OLD[:10]).match == "single_version"


def test_primary_file_prefers_primary_true_then_largest_size() -> None:
    small = {"name": "small", "sizeKB": 10}
    large = {"name": "large", "sizeKB": 99.5}
    marked = {"name": "marked", "sizeKB": 5, "primary": True}

    assert primary_file({"files": [small, marked, large]}) == marked
    assert primary_file({"files": [small, large, {"name": "bad", "sizeKB": "big"}]}) == large
    assert primary_file({"files": []}) is None
    assert primary_file({"files": "nope"}) is None


def test_unmatched_single_version_primary_file_is_the_marked_one() -> None:
    version = civitai_version(
        files=[
            civitai_file(name="big.safetensors", sha256=SHA_OTHER, primary=False, sizeKB=900),
            civitai_file(name="marked.safetensors", sha256=SHA_NEW, primary=True, sizeKB=100),
        ]
    )

    assert _match_single(version, sha256=SHA_OLD).primary_file["name"] == "marked.safetensors"
