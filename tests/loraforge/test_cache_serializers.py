"""The Redis cache stores JSON, never pickles."""

from __future__ import annotations

import pytest
from django.core.cache.backends.redis import RedisCache

from loraforge.cache_serializers import JSONSerializer


@pytest.mark.parametrize("value", [{"a": [1, 2.5, None, "x"]}, "text", 7, True, None])
def test_values_round_trip(value):
    serializer = JSONSerializer()
    assert serializer.loads(serializer.dumps(value)) == value


def test_a_pickled_payload_is_not_executed():
    import pickle

    with pytest.raises(UnicodeDecodeError):  # pickle bytes are not even text, let alone JSON
        JSONSerializer().loads(pickle.dumps({"x": 1}))


@pytest.mark.redis
def test_the_redis_cache_uses_json(redis_url):
    cache = RedisCache(
        redis_url,
        {
            "OPTIONS": {"serializer": "loraforge.cache_serializers.JSONSerializer"},
        },
    )
    cache.set("k", {"n": [1, 2]}, 30)
    cache.set("counter", 1, 30)
    cache.incr("counter")
    assert cache.get("k") == {"n": [1, 2]}
    assert cache.get("counter") == 2
    raw = cache._cache.get_client("k").get(cache.make_and_validate_key("k"))
    assert raw == b'{"n":[1,2]}'
    cache.delete_many(["k", "counter"])
