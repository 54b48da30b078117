"""A large export through the real server (uvicorn, Django as WSGI in the server's thread pool): the archive streams
with chunked transfer encoding, verifies, and the web process's memory does not grow with it."""

from __future__ import annotations

import hashlib
import threading
import zipfile
from pathlib import Path

import pytest
import requests

from backups.archive.format import MANIFEST
from loraforge.api_keys import api_key_create
from tests.factories import AdapterFactory
from tests.processes import ProcessSet, server_env

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
MIB = 1024 * 1024
FILE_MIB = 200
FILES = 3


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRss(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            self.peak = max(self.peak, rss_mib(self.pid))


def test_large_export_streams_with_flat_memory(tmp_path: Path):
    loras = tmp_path / "loras"
    loras.mkdir()
    for index in range(FILES):
        path = loras / f"big_{index}.safetensors"
        with path.open("wb") as handle:  # sparse: cheap to create, read back as zeros
            handle.truncate(FILE_MIB * MIB)
        AdapterFactory(file_path=str(path), file_size=FILE_MIB * MIB)
    key = api_key_create(name="export").plain_key
    env = server_env(tmp_path, LORAFORGE_LORA_DIRS=str(loras))
    target = tmp_path / "download.zip"
    with ProcessSet(tmp_path / "logs") as procs:
        web, base_url = procs.start_web(env)
        headers = {"X-API-Key": key}
        requests.post(f"{base_url}/api/v1/export/estimate", json={}, headers=headers, timeout=30)  # warm up
        before = rss_mib(web.pid)
        sampler = PeakRss(web.pid)
        sampler.start()
        body = {"lora_files": True, "max_size_mb": 4096}
        with requests.post(f"{base_url}/api/v1/export", json=body, headers=headers, stream=True, timeout=120) as reply:
            assert reply.status_code == 200, reply.text[:500]
            assert reply.headers["Content-Type"] == "application/zip"
            assert "Content-Length" not in reply.headers
            assert reply.headers["Transfer-Encoding"] == "chunked"
            with target.open("wb") as sink:
                for chunk in reply.iter_content(chunk_size=MIB):
                    sink.write(chunk)
        sampler.done.set()
        sampler.join()
    size = target.stat().st_size
    assert size > FILES * FILE_MIB * MIB
    growth = sampler.peak - before
    print(f"archive {size / MIB:.0f} MiB, web RSS {before:.0f} MiB before, peak {sampler.peak:.0f} MiB")
    assert growth < 64, f"the web process grew by {growth:.0f} MiB while streaming {size / MIB:.0f} MiB"
    with zipfile.ZipFile(target) as archive:
        import json

        manifest = json.loads(archive.read(MANIFEST))
        assert manifest["counts"]["lora_files"] == FILES
        zero_digest = hashlib.sha256(b"\0" * (FILE_MIB * MIB)).hexdigest()
        files = [member for member in manifest["members"] if "/files/" in member["path"]]
        assert {(member["size"], member["sha256"]) for member in files} == {(FILE_MIB * MIB, zero_digest)}
        for member in files:
            digest = hashlib.sha256()
            with archive.open(member["path"]) as stream:
                while block := stream.read(MIB):
                    digest.update(block)
            assert digest.hexdigest() == zero_digest
