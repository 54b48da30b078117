"""Finding the model files of the LoRA folders (SPEC 6.6.1).

The walk lists every folder once with ``os.scandir`` and hands each model file its folder's
``{name: stat}`` map, so sidecar discovery needs no further system calls. It never follows a
directory symlink, follows a file symlink only when its target stays inside a LoRA folder, and
counts a physical file (``st_dev``, ``st_ino``) once. A folder or file it cannot read becomes a
problem of the walk (a scan ``error`` item); nothing here raises for bad input on disk.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from adapters.scanner.paths import model_format

logger = logging.getLogger("loraforge.adapters")

MAX_PATH_LENGTH = 1024  # Adapter.file_path / ScannedFile.path


@dataclass(frozen=True)
class WalkedFile:
    """A model file found by the walk, with the ``stat()`` taken while listing its folder."""

    path: Path  # absolute, normalised, as walked (not symlink-resolved)
    stat: os.stat_result
    siblings: Mapping[str, os.stat_result] | None = None  # every regular file of the folder, by name

    @property
    def key(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class WalkProblem:
    path: str
    detail: str


@dataclass
class Walk:
    files: list[WalkedFile] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)


def normalized(path: str | Path) -> str:
    return os.path.normpath(os.path.abspath(path))


def scan_scopes(paths: Iterable[Path] | None, roots: Sequence[Path]) -> list[Path]:
    """The scanned subtrees: the given files or folders, else every LoRA folder (duplicates dropped)."""
    chosen = list(paths or ()) or list(roots)
    return [Path(path) for path in dict.fromkeys(normalized(path) for path in chosen)]


def is_under(path: str, scope: str) -> bool:
    """Textual containment of stored paths (both normalised), as the walk produced them."""
    return path == scope or path.startswith(scope.rstrip(os.sep) + os.sep)


def walk_library(scopes: Sequence[Path], *, roots: Sequence[Path], ignore: Sequence[str] = ()) -> Walk:
    walker = _Walker(roots, ignore)
    for scope in scopes:
        walker.scope(normalized(scope))
    return walker.walk


def list_siblings(folder: str | Path) -> dict[str, os.stat_result] | None:
    """The ``{name: stat}`` map of one folder's regular files (None when it cannot be listed)."""
    try:
        with os.scandir(folder) as entries:
            found = {}
            for entry in entries:
                info = _entry_stat(entry)
                if info is not None and stat.S_ISREG(info.st_mode):
                    found[entry.name] = info
            return found
    except OSError:
        return None


def _entry_stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return entry.stat()
    except OSError:
        return None


def os_error_text(exc: OSError) -> str:
    return exc.strerror or str(exc) or exc.__class__.__name__


def printable(path: str) -> str:
    """A path that can be stored and serialised even when its bytes were not UTF-8."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Walker:
    def __init__(self, roots: Sequence[Path], ignore: Sequence[str]) -> None:
        self.roots = [normalized(root) for root in roots]
        self.real_roots = [os.path.realpath(root) for root in self.roots]
        self.ignore = [pattern.strip() for pattern in ignore if pattern.strip()]
        self.seen_files: set[tuple[int, int]] = set()
        self.seen_dirs: set[tuple[int, int]] = set()
        self.walk = Walk()

    def problem(self, path: str, detail: str) -> None:
        self.walk.problems.append(WalkProblem(printable(path), detail))

    def scope(self, path: str) -> None:
        if not self.inside_roots(os.path.realpath(path)):
            self.problem(path, "path must be inside a configured LoRA folder")
            return
        try:
            info = os.stat(path)
        except OSError as exc:
            if model_format(path) is None:
                self.problem(path, f"LoRA folder does not exist: {printable(path)}")
            elif not isinstance(exc, FileNotFoundError):
                self.problem(path, os_error_text(exc))
            return  # a missing model file: the scan marks its adapter missing
        if stat.S_ISDIR(info.st_mode):
            self.tree(path)
        elif model_format(path) is None:
            self.problem(path, f"Not a .safetensors, .pt or .ckpt file: {printable(path)}")
        else:
            self.add(path, info, os.path.islink(path), list_siblings(os.path.dirname(path)))

    def tree(self, top: str) -> None:
        stack = [top]
        while stack:
            folder = stack.pop()
            subfolders = self.folder(folder)
            stack.extend(reversed(subfolders))

    def folder(self, folder: str) -> list[str]:
        """List one folder: record its model files, return its sub-folders to walk (sorted)."""
        entries = self.listing(folder)
        if entries is None:
            return []
        siblings: dict[str, os.stat_result] = {}
        models: list[tuple[os.DirEntry[str], os.stat_result]] = []
        subfolders: list[str] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            kind = self.classify(entry, siblings)
            if kind == "folder" and not self.ignored(entry.path, folder=True):
                subfolders.append(entry.path)
            elif kind == "model" and not self.ignored(entry.path):
                models.append((entry, siblings[entry.name]))
        for entry, info in models:
            self.add(entry.path, info, entry.is_symlink(), siblings)
        return subfolders

    def listing(self, folder: str) -> list[os.DirEntry[str]] | None:
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in self.seen_dirs:
                return None
            self.seen_dirs.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as iterator:
                return sorted(iterator, key=lambda entry: entry.name)
        except OSError as exc:
            self.problem(folder, f"Cannot read folder: {os_error_text(exc)}")
            return None

    def classify(self, entry: os.DirEntry[str], siblings: dict[str, os.stat_result]) -> str | None:
        """``folder`` (a real one, never a symlink), ``model``, or None; regular files go to ``siblings``."""
        try:
            if entry.is_dir(follow_symlinks=False):
                return "folder"
            info = entry.stat()  # follows file symlinks
        except OSError as exc:  # a dangling symlink or a symlink loop
            if model_format(entry.name) is not None:
                self.problem(entry.path, os_error_text(exc))
            return None
        if not stat.S_ISREG(info.st_mode):
            return None  # a symlink to a folder (never followed), a socket, a device
        siblings[entry.name] = info
        return "model" if model_format(entry.name) is not None else None

    def ignored(self, path: str, *, folder: bool = False) -> bool:
        if not self.ignore:
            return False
        relative = self.relative(path)
        if relative is None:
            return False
        candidates = (relative, relative + "/") if folder else (relative,)
        return any(fnmatch.fnmatch(candidate, pattern) for pattern in self.ignore for candidate in candidates)

    def relative(self, path: str) -> str | None:
        for root in self.roots:
            if path != root and is_under(path, root):
                return os.path.relpath(path, root).replace(os.sep, "/")
        return None

    def add(
        self, path: str, info: os.stat_result, is_link: bool, siblings: Mapping[str, os.stat_result] | None
    ) -> None:
        if is_link and not self.inside_roots(os.path.realpath(path)):
            logger.info("Skipping %s: the symlink points outside the LoRA folders", printable(path))
            return
        if printable(path) != path:
            self.problem(path, "File name is not valid UTF-8")
            return
        if len(path) > MAX_PATH_LENGTH:
            self.problem(path, f"Path is longer than {MAX_PATH_LENGTH} characters")
            return
        identity = (info.st_dev, info.st_ino)
        if identity in self.seen_files:
            return
        self.seen_files.add(identity)
        self.walk.files.append(WalkedFile(Path(path), info, siblings))

    def inside_roots(self, real_path: str) -> bool:
        return any(is_under(real_path, real_root) for real_root in self.real_roots)
