"""The progress WebSocket protocol (SPEC 4.2, 6.5, 7): handshake authentication, ping, subscriptions, every
bad-message reply (the connection stays open), at-most-once delivery and an unavailable channel layer."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from loraforge import progress_hub
from loraforge.api_keys import api_key_create
from loraforge.progress import publish

TIMEOUT = 5
JOB_A = "5d6e7f80-9a1b-4c2d-8e3f-4a5b6c7d8e77"
JOB_B = "6e7f8091-ab1c-4d2e-9f30-5b6c7d8e9f88"


class Socket(ApplicationCommunicator):
    def __init__(self, *, query: str = "", headers: list[tuple[bytes, bytes]] | None = None) -> None:
        from loraforge.asgi import application

        scope = {
            "type": "websocket",
            "path": "/api/v1/ws/progress",
            "query_string": query.encode(),
            "headers": headers or [],
            "subprotocols": [],
        }
        super().__init__(application, scope)

    async def handshake(self) -> dict[str, Any]:
        await self.send_input({"type": "websocket.connect"})
        return dict(await self.receive_output(TIMEOUT))

    async def send_text(self, text: str) -> None:
        await self.send_input({"type": "websocket.receive", "text": text})

    async def send_json(self, data: Any) -> None:
        await self.send_text(json.dumps(data))

    async def receive_json(self) -> Any:
        return json.loads((await self.receive_output(TIMEOUT))["text"])

    async def drain(self) -> list[dict[str, Any]]:
        frames = []
        while not await self.receive_nothing(0.2):
            frames.append(await self.receive_json())
        return frames

    async def close(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(TIMEOUT)


async def opened(**kwargs: Any) -> Socket:
    socket = Socket(**kwargs)
    assert (await socket.handshake())["type"] == "websocket.accept"
    connected = await socket.receive_json()
    assert connected["type"] == "connected"
    assert connected["data"]["message"] == "Connected to progress monitoring"
    assert connected["data"]["protocol_version"] == 1
    assert connected["data"]["connection_id"].startswith("conn_")
    assert len(connected["data"]["connection_id"]) == len("conn_") + 12
    return socket


@sync_to_async
def new_key(**kwargs: Any) -> str:
    return api_key_create(name=f"socket-{uuid.uuid4().hex[:6]}", **kwargs).plain_key


def run(coroutine_function: Any) -> None:
    async_to_sync(coroutine_function)()


# --- handshake authentication ----------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_connection_without_credentials_is_refused_during_the_handshake():
    async def scenario() -> None:
        assert await Socket().handshake() == {"type": "websocket.close", "code": 4401}

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_an_invalid_or_revoked_key_is_refused():
    async def scenario() -> None:
        assert (await Socket(query="api_key=lf_nope.nope").handshake())["code"] == 4401
        assert (await Socket(headers=[(b"x-api-key", b"lf_bad.key")]).handshake())["code"] == 4401

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_key_in_the_header_or_the_query_is_accepted():
    async def scenario() -> None:
        key = await new_key()
        await (await opened(query=f"api_key={key}")).close()
        await (await opened(headers=[(b"x-api-key", key.encode())])).close()
        await (await opened(query=f"api_key={await new_key(read_only=True)}")).close()

    run(scenario)


def _staff_cookie() -> bytes:
    user = get_user_model().objects.create_user("curator", password="pw-123456", is_staff=True)
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


@pytest.mark.django_db(transaction=True)
def test_a_staff_session_needs_a_trusted_origin():
    async def scenario() -> None:
        cookie = await sync_to_async(_staff_cookie)()
        await (await opened(headers=[(b"cookie", cookie), (b"origin", b"http://localhost:8000")])).close()
        assert (await Socket(headers=[(b"cookie", cookie)]).handshake())["code"] == 4401
        evil = [(b"cookie", cookie), (b"origin", b"https://evil.example")]
        assert (await Socket(headers=evil).handshake())["code"] == 4401

    run(scenario)


def _logged_in_client(**user_fields: Any) -> tuple[Any, Client, bytes]:
    fields = {"is_staff": True, **user_fields}
    user = get_user_model().objects.create_user(f"user-{uuid.uuid4().hex[:8]}", password="pw-123456", **fields)
    client = Client()
    client.force_login(user)
    return user, client, f"sessionid={client.cookies['sessionid'].value}".encode()


def _change_password(user: Any, client: Client) -> None:
    user.set_password("another-pw-654321")
    user.save()


def _log_out(user: Any, client: Client) -> None:
    client.logout()


def _deactivate(user: Any, client: Client) -> None:
    user.is_active = False
    user.save()


def _demote(user: Any, client: Client) -> None:
    user.is_staff = False
    user.save()


def _http_status(cookie: bytes) -> int:
    """What HTTP answers the same cookie on an API endpoint."""
    name, _, value = cookie.decode().partition("=")
    client = Client()
    client.cookies[name] = value
    return client.get("/api/v1/jobs").status_code


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", [_change_password, _log_out, _deactivate, _demote])
def test_the_socket_refuses_a_session_that_http_refuses(change):
    """The socket admits exactly what HTTP admits: Django's session auth hash, the backend and the user's
    state decide, not a bare read of the session store."""
    origin = (b"origin", b"http://localhost:8000")

    async def scenario() -> None:
        user, client, cookie = await sync_to_async(_logged_in_client)()
        assert await sync_to_async(_http_status)(cookie) == 200
        await (await opened(headers=[(b"cookie", cookie), origin])).close()
        await sync_to_async(change)(user, client)
        # The socket first: HTTP flushes a session whose auth hash no longer matches.
        assert (await Socket(headers=[(b"cookie", cookie), origin]).handshake())["code"] == 4401
        assert await sync_to_async(_http_status)(cookie) in (401, 403)

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_a_non_staff_session_is_refused_like_http():
    async def scenario() -> None:
        _user, _client, cookie = await sync_to_async(_logged_in_client)(is_staff=False)
        assert await sync_to_async(_http_status)(cookie) == 403
        origin = (b"origin", b"http://localhost:8000")
        assert (await Socket(headers=[(b"cookie", cookie), origin]).handshake())["code"] == 4401

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_auth_off_opens_the_socket(settings):
    settings.LORAFORGE_AUTH = False

    async def scenario() -> None:
        await (await opened()).close()

    run(scenario)


# --- messages ------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("frame", "message", "code"),
    [
        ("hello", "Invalid JSON", "invalid_json"),
        ("[1, 2]", "Message must be a JSON object", "not_an_object"),
        ('"subscribe"', "Message must be a JSON object", "not_an_object"),
        ('{"type": "dance"}', "Unknown message type 'dance'", "unknown_type"),
        ('{"job_ids": null}', "Unknown message type 'None'", "unknown_type"),
        ('{"type": "subscribe", "job_ids": "abc"}', "job_ids must be a list of job ids or null", "invalid_payload"),
        ('{"type": "unsubscribe", "job_ids": 5}', "job_ids must be a list of job ids or null", "invalid_payload"),
        ("x" * (64 * 1024 + 1), "Message too large", "message_too_large"),
    ],
)
def test_bad_messages_get_an_error_and_the_connection_stays_open(frame, message, code):
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_text(frame)
        error = await socket.receive_json()
        assert error["type"] == "error"
        assert error["data"] == {"message": message, "code": code}
        await socket.send_json({"type": "ping"})
        pong = await socket.receive_json()
        assert (pong["type"], pong["data"]) == ("pong", {})
        await socket.close()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_binary_frames_are_not_supported():
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_input({"type": "websocket.receive", "bytes": b"\x00\x01"})
        error = await socket.receive_json()
        assert error["data"] == {"message": "Binary frames are not supported", "code": "binary_not_supported"}
        await socket.close()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_invalid_ids_are_reported_and_the_valid_ones_still_subscribed():
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_A, "nope", 7]})
        error, confirmed = await socket.receive_json(), await socket.receive_json()
        assert error["data"] == {"message": "Invalid job ids: nope, 7", "code": "invalid_job_ids"}
        assert confirmed["type"] == "subscription_confirmed"
        assert confirmed["data"] == {"job_ids": [JOB_A], "all": False}
        await socket.close()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_subscriptions_are_additive_and_unsubscribe_removes_them():
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_B]})
        assert (await socket.receive_json())["data"] == {"job_ids": [JOB_B], "all": False}
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_A]})
        assert (await socket.receive_json())["data"] == {"job_ids": sorted([JOB_A, JOB_B]), "all": False}
        await socket.send_json({"type": "subscribe", "job_ids": None})
        assert (await socket.receive_json())["data"] == {"job_ids": sorted([JOB_A, JOB_B]), "all": True}
        await socket.send_json({"type": "unsubscribe", "job_ids": [JOB_A]})
        assert (await socket.receive_json())["data"] == {"job_ids": [JOB_B], "all": True}
        await socket.send_json({"type": "unsubscribe", "job_ids": None})
        assert (await socket.receive_json())["data"] == {"job_ids": [], "all": False}
        await socket.close()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_more_than_1000_explicit_subscriptions_are_refused():
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_json({"type": "subscribe", "job_ids": [str(uuid.uuid4()) for _ in range(1000)]})
        assert len((await socket.receive_json())["data"]["job_ids"]) == 1000
        await socket.send_json({"type": "subscribe", "job_ids": [str(uuid.uuid4())]})
        error = await socket.receive_json()
        assert error["data"] == {"message": "Too many subscriptions (limit 1000)", "code": "too_many_subscriptions"}
        await socket.close()

    run(scenario)


# --- delivery of events ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_event_reaches_a_socket_once_even_when_subscribed_to_all_and_to_the_job():
    async def scenario() -> None:
        both = await opened(query=f"api_key={await new_key()}")
        only_a = await opened(query=f"api_key={await new_key()}")
        only_b = await opened(query=f"api_key={await new_key()}")
        await both.send_json({"type": "subscribe", "job_ids": [JOB_A]})
        await both.send_json({"type": "subscribe", "job_ids": None})
        await only_a.send_json({"type": "subscribe", "job_ids": [JOB_A]})
        await only_b.send_json({"type": "subscribe", "job_ids": [JOB_B]})
        for socket in (both, only_a, only_b):
            await socket.drain()
        await sync_to_async(publish)(JOB_A, "progress_update", {"job_id": JOB_A, "progress": 0.5})
        assert [frame["data"]["progress"] for frame in await both.drain()] == [0.5]
        assert [frame["data"]["job_id"] for frame in await only_a.drain()] == [JOB_A]
        assert await only_b.drain() == []
        for socket in (both, only_a, only_b):
            await socket.close()

    run(scenario)


@pytest.mark.django_db(transaction=True)
def test_an_unavailable_channel_layer_is_reported_and_retried_on_the_next_subscribe(monkeypatch):
    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        hub = socket_hub()
        original = hub.layer.group_add
        calls = {"n": 0}

        async def flaky_group_add(group: str, channel: str) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise ConnectionError("Redis is down")
            await original(group, channel)

        monkeypatch.setattr(hub.layer, "group_add", flaky_group_add)
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_A]})
        error, confirmed = await socket.receive_json(), await socket.receive_json()
        assert error["data"] == {
            "message": "Live progress is temporarily unavailable",
            "code": "channel_layer_unavailable",
        }
        assert confirmed["type"] == "subscription_confirmed"
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_A]})  # retried: joins now
        assert (await socket.receive_json())["type"] == "subscription_confirmed"
        await sync_to_async(publish)(JOB_A, "progress_update", {"job_id": JOB_A, "progress": 0.25})
        assert [frame["data"]["progress"] for frame in await socket.drain()] == [0.25]
        await socket.close()

    run(scenario)


def socket_hub() -> progress_hub.ProgressHub:
    from channels.layers import get_channel_layer

    return progress_hub.progress_hub(get_channel_layer)


@pytest.mark.django_db(transaction=True)
def test_the_hub_survives_a_receive_failure_and_rejoins_its_groups(monkeypatch):
    monkeypatch.setattr(progress_hub, "RETRY_SECONDS", 0.01)

    async def scenario() -> None:
        socket = await opened(query=f"api_key={await new_key()}")
        await socket.send_json({"type": "subscribe", "job_ids": [JOB_A]})
        await socket.drain()
        hub = socket_hub()
        real_receive, real_group_add = hub.layer.receive, hub.layer.group_add
        failures, joins = [ConnectionError("Redis restarted")], []

        async def flaky_receive(channel: str) -> Any:
            if failures:
                raise failures.pop()
            return await real_receive(channel)

        async def counting_group_add(group: str, channel: str) -> None:
            joins.append(group)
            await real_group_add(group, channel)

        monkeypatch.setattr(hub.layer, "receive", flaky_receive)
        monkeypatch.setattr(hub.layer, "group_add", counting_group_add)
        await sync_to_async(publish)(JOB_A, "progress_update", {"job_id": JOB_A, "progress": 0.1})
        assert [frame["data"]["progress"] for frame in await socket.drain()] == [0.1]
        await sync_to_async(publish)(JOB_A, "progress_update", {"job_id": JOB_A, "progress": 0.2})
        assert [frame["data"]["progress"] for frame in await socket.drain()] == [0.2]
        assert failures == []
        assert joins == [f"lf.job.{JOB_A.replace('-', '')}"]
        await socket.close()

    run(scenario)
