"""One helper turns every Redis reply into text, whichever way the client decodes."""

from __future__ import annotations

from typing import Any

from bus.redis import connect, reply_text


async def test_replies_of_a_bytes_client_and_a_decoding_client_read_the_same(
    redis_url: str,
) -> None:
    raw, decoding = connect(redis_url), connect(redis_url, decode_responses=True)
    try:
        await raw.set("reply-text-key", "café")
        answers: list[Any] = [await raw.get("reply-text-key"), await decoding.get("reply-text-key")]
        assert [reply_text(a) for a in answers] == ["café", "café"]
        # A missing key (nil) reads as no text at all, not as "None".
        assert reply_text(await raw.get("reply-text-missing")) == ""
    finally:
        await raw.delete("reply-text-key")
        await raw.aclose()
        await decoding.aclose()
