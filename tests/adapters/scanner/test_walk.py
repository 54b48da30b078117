"""The walk of the LoRA folders (SPEC 6.6.1): real folders on disk, symlinks, ignore globs, bad folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.scanner import walk as walk_module
from adapters.scanner.walk import scan_scopes, walk_library
from tests.lora_files import write_safetensors


def walked(root: Path, *, ignore: tuple[str, ...] = (), scopes: list[Path] | None = None):
    result = walk_library(scopes or [root], roots=[root], ignore=ignore)
    return [str(file.path.relative_to(root)) for file in result.files], result


def test_walk_is_recursive_sorted_and_finds_model_extensions_case_insensitively(tmp_path: Path):
    root = tmp_path / "loras"
    for name in ("b.safetensors", "a/x.PT", "a/deeper/y.Ckpt", "c.SafeTensors"):
        write_safetensors(root / name)
    (root / "notes.txt").write_text("not a model")
    (root / "a" / "x.json").write_text("{}")
    names, result = walked(root)
    assert names == ["b.safetensors", "c.SafeTensors", "a/x.PT", "a/deeper/y.Ckpt"]
    assert result.problems == []


def test_walk_skips_hidden_files_and_folders(tmp_path: Path):
    root = tmp_path / "loras"
    write_safetensors(root / "visible.safetensors")
    write_safetensors(root / ".hidden.safetensors")
    write_safetensors(root / ".trash" / "old.safetensors")
    assert walked(root)[0] == ["visible.safetensors"]


def test_each_model_file_gets_its_folders_listing(tmp_path: Path):
    root = tmp_path / "loras"
    model = write_safetensors(root / "style.safetensors")
    (root / "style.civitai.info").write_text("{}")
    (root / "style.preview.png").write_bytes(b"png")
    (root / "sub").mkdir()
    (file,) = walk_library([root], roots=[root]).files
    assert file.siblings is not None
    assert sorted(file.siblings) == ["style.civitai.info", "style.preview.png", "style.safetensors"]
    assert file.siblings["style.civitai.info"].st_size == 2
    assert file.stat.st_size == model.stat().st_size


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        (("archive",), ["keep.safetensors", "x.bak.safetensors", "sub/keep.safetensors"]),
        (("archive/*",), ["keep.safetensors", "x.bak.safetensors", "sub/keep.safetensors"]),
        (("*.bak.safetensors",), ["keep.safetensors", "archive/old.safetensors", "sub/keep.safetensors"]),
        (("sub/*",), ["keep.safetensors", "x.bak.safetensors", "archive/old.safetensors"]),
    ],
)
def test_ignore_globs_match_paths_relative_to_the_folder(tmp_path: Path, patterns, expected):
    root = tmp_path / "loras"
    for name in ("keep.safetensors", "x.bak.safetensors", "archive/old.safetensors", "sub/keep.safetensors"):
        write_safetensors(root / name)
    names = walked(root, ignore=patterns)[0]
    assert sorted(names) == sorted(expected)


def test_directory_symlinks_are_never_followed(tmp_path: Path):
    root = tmp_path / "loras"
    write_safetensors(root / "real" / "a.safetensors")
    outside = tmp_path / "elsewhere"
    write_safetensors(outside / "b.safetensors")
    (root / "linked_inside").symlink_to(root / "real", target_is_directory=True)
    (root / "linked_outside").symlink_to(outside, target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    names, result = walked(root)
    assert names == ["real/a.safetensors"]
    assert result.problems == []


def test_file_symlink_is_followed_only_inside_the_folders(tmp_path: Path):
    root = tmp_path / "loras"
    target = write_safetensors(root / "store" / "real.safetensors")
    outside = write_safetensors(tmp_path / "outside" / "secret.safetensors", seed=1)
    (root / "alias.safetensors").symlink_to(target)
    (root / "escape.safetensors").symlink_to(outside)
    names, result = walked(root)
    assert names == ["alias.safetensors"]  # the alias is walked first; the target is the same physical file
    assert result.problems == []


def test_a_physical_file_counts_once(tmp_path: Path):
    root = tmp_path / "loras"
    original = write_safetensors(root / "a.safetensors")
    os.link(original, root / "b.safetensors")
    assert walked(root)[0] == ["a.safetensors"]


def test_symlink_loop_is_a_problem_not_an_abort(tmp_path: Path):
    root = tmp_path / "loras"
    write_safetensors(root / "good.safetensors")
    (root / "loop.safetensors").symlink_to(root / "loop.safetensors")
    (root / "dangling.safetensors").symlink_to(root / "gone.safetensors")
    names, result = walked(root)
    assert names == ["good.safetensors"]
    assert [(Path(p.path).name, p.detail) for p in result.problems] == [
        ("dangling.safetensors", "No such file or directory"),
        ("loop.safetensors", "Too many levels of symbolic links"),
    ]


def test_unreadable_folder_is_a_problem_and_the_walk_goes_on(tmp_path: Path, monkeypatch):
    # Tests run as root, where chmod 000 does not stop a listing: simulate it for that one folder.
    root = tmp_path / "loras"
    write_safetensors(root / "locked" / "a.safetensors")
    write_safetensors(root / "open" / "b.safetensors")
    real_scandir = os.scandir

    def scandir(path):
        if str(path) == str(root / "locked"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    names, result = walked(root)
    assert names == ["open/b.safetensors"]
    assert [(p.path, p.detail) for p in result.problems] == [
        (str(root / "locked"), "Cannot read folder: Permission denied")
    ]


def test_missing_folder_is_a_problem(tmp_path: Path):
    root = tmp_path / "loras"
    missing = tmp_path / "nope"
    result = walk_library([missing], roots=[root, missing])
    assert [(p.path, p.detail) for p in result.problems] == [(str(missing), f"LoRA folder does not exist: {missing}")]


def test_paths_restrict_the_walk_to_files_or_folders(tmp_path: Path):
    root = tmp_path / "loras"
    for name in ("a/one.safetensors", "a/two.safetensors", "b/three.safetensors"):
        write_safetensors(root / name)
    (root / "b" / "three.json").write_text("{}")
    names, _ = walked(root, scopes=[root / "a", root / "b" / "three.safetensors"])
    assert names == ["a/one.safetensors", "a/two.safetensors", "b/three.safetensors"]
    three = walk_library([root / "b" / "three.safetensors"], roots=[root]).files[0]
    assert three.siblings is not None
    assert "three.json" in three.siblings


def test_a_missing_model_file_in_paths_is_not_a_problem(tmp_path: Path):
    root = tmp_path / "loras"
    root.mkdir()
    result = walk_library([root / "gone.safetensors"], roots=[root])
    assert (result.files, result.problems) == ([], [])


def test_odd_characters_in_names_are_walked(tmp_path: Path):
    root = tmp_path / "loras"
    names = ["with space.safetensors", "ünïcødé ✨.safetensors", "new\nline.safetensors"]
    for name in names:
        write_safetensors(root / name)
    assert sorted(walked(root)[0]) == sorted(names)


def test_a_name_that_is_not_utf8_is_a_problem(tmp_path: Path):
    root = tmp_path / "loras"
    write_safetensors(root / "good.safetensors")
    bad = os.fsencode(root) + b"/bad\xff.safetensors"
    with open(bad, "wb") as handle:
        handle.write(b"x")
    names, result = walked(root)
    assert names == ["good.safetensors"]
    assert [p.detail for p in result.problems] == ["File name is not valid UTF-8"]
    assert result.problems[0].path.endswith("bad\ufffd.safetensors")


def test_scopes_default_to_the_roots_and_are_normalised(tmp_path: Path):
    root = tmp_path / "loras"
    assert scan_scopes(None, [root]) == [root]
    assert scan_scopes([Path(f"{root}/a/../b/"), root / "b"], [root]) == [root / "b"]
