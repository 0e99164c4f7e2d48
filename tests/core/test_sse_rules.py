"""The SSE decoder against the WHATWG event-stream rules, as a table: the bytes a server sends
(in the reads they arrive in), the `data` payloads the chat probe gets. Servers differ in
spacing and line ends; every valid framing must give the same events, and nothing that is not
an event (a blank line, a comment, another field) may dispatch one."""

from __future__ import annotations

import pytest

from exporter.probes.sse import SSEDecoder


def decode(*reads: bytes, max_line: int = 1 << 20) -> tuple[list[str], bool]:
    """The events from the reads in order, and whether a partial event is left."""
    dec = SSEDecoder(max_line=max_line)
    events = [e for r in reads for e in dec.feed(r)]
    return events, dec.has_partial


@pytest.mark.parametrize(
    ("name", "reads", "events"),
    [
        ("the usual framing", [b'data: {"a":1}\n\n'], ['{"a":1}']),
        ("no space after the colon is valid SSE", [b'data:{"a":1}\n\n'], ['{"a":1}']),
        ("only one leading space is dropped", [b"data:  x\n\n"], [" x"]),
        ("a tab is not the space", [b"data:\tx\n\n"], ["\tx"]),
        ("a colon in the value stays", [b"data: a: b\n\n"], ["a: b"]),
        ("data lines join with newlines", [b"data: a\ndata:b\n\n"], ["a\nb"]),
        ("a bare `data` line is an empty data line", [b"data\n\n"], [""]),
        ("blank lines alone dispatch nothing", [b"\n\n\n\r\n\r\r"], []),
        ("a comment dispatches nothing", [b": keep-alive\n\n"], []),
        ("other fields are no data", [b"event: ping\nid: 7\nretry: 10\n\n"], []),
        ("a field that merely starts with data", [b"datax: y\n\n"], []),
        ("CRLF line ends", [b"data: a\r\n\r\ndata: b\r\n\r\n"], ["a", "b"]),
        ("CR line ends", [b"data: a\r\rdata: b\r\r"], ["a", "b"]),
        ("CRLF split between reads is one line end", [b"data: a\r", b"\n\r", b"\n"], ["a"]),
        ("CR then LF in the next read: one line end", [b"data: a\r", b"\ndata: b\n\n"], ["a\nb"]),
        (
            "a CR mid-read, then LF at the next read's start",
            [b"data: a\r\rdata: b", b"\n\n"],
            ["a", "b"],
        ),
        ("a CR ending a read, then a new line", [b"data: a\r", b"\rdata: b\r\r"], ["a", "b"]),
        ("an event over many reads", [b"da", b"ta", b": h", b"i\n", b"\n"], ["hi"]),
        ("several events in one read", [b"data: 1\n\ndata: 2\n\ndata: 3\n\n"], ["1", "2", "3"]),
        ("an empty read changes nothing", [b"data: a\n", b"", b"\n"], ["a"]),
        ("a line with only a space is not blank", [b"data: a\n \n\n"], ["a"]),
    ],
)
def test_events(name: str, reads: list[bytes], events: list[str]) -> None:
    got, partial = decode(*reads)
    assert got == events, name
    assert not partial, name


@pytest.mark.parametrize(
    ("reads", "partial"),
    [
        ([b"data: a\n"], True),  # a data line waits for its blank line
        ([b"data: a"], True),  # a line not ended
        ([b"data: a\n\n"], False),
        ([b"data: a\n\n   "], False),  # trailing spaces are no data
        ([b": comment"], True),  # cannot know it is a comment until the line ends
        ([b""], False),
    ],
)
def test_a_truncated_stream_is_seen(reads: list[bytes], partial: bool) -> None:
    assert decode(*reads)[1] is partial


def test_the_line_limit_is_the_line_not_the_read() -> None:
    limit = 64
    events, _ = decode(b"data: " + b"x" * (limit - 6) + b"\n\n", max_line=limit)
    assert events == ["x" * (limit - 6)]  # exactly the limit, in one read
    dec = SSEDecoder(max_line=limit)
    dec.feed(b"x" * limit)  # exactly the limit, not ended: allowed
    with pytest.raises(ValueError):
        dec.feed(b"x")
    dec = SSEDecoder(max_line=limit)
    for _ in range(10):  # many short lines add up to more than the limit: fine
        dec.feed(b"data: " + b"y" * 40 + b"\n")
    assert dec.feed(b"\n") == ["\n".join(["y" * 40] * 10)]


def test_invalid_utf8_is_an_error_and_a_split_character_is_not() -> None:
    with pytest.raises(UnicodeDecodeError):
        SSEDecoder().feed(b"data: \xff\n\n")
    raw = "data: ü\n\n".encode()
    cut = raw.index(b"\xbc")  # inside the two bytes of "ü"
    assert decode(raw[:cut], raw[cut:])[0] == ["ü"]


def test_the_default_line_limit_is_one_mebibyte() -> None:
    """What the chat probe uses: a 1 MiB line is a long answer, one byte more is hostile."""
    mib = 1 << 20
    dec = SSEDecoder()
    dec.feed(b"x" * mib)
    with pytest.raises(ValueError):
        dec.feed(b"x")


@pytest.mark.parametrize(
    ("name", "reads", "fails"),
    [
        ("a full-size line after a short one in the same read", [b"data: a\n" + b"y" * 64], False),
        (
            "a full-size line after a line that came in pieces",
            [b"y" * 30, b"\n" + b"z" * 64],
            False,
        ),
        ("one byte more after a line that came in pieces", [b"y" * 30, b"\n" + b"z" * 65], True),
    ],
)
def test_the_limit_counts_only_the_line_being_read(
    name: str, reads: list[bytes], fails: bool
) -> None:
    dec = SSEDecoder(max_line=64)
    if fails:
        with pytest.raises(ValueError):
            for r in reads:
                dec.feed(r)
    else:
        for r in reads:
            dec.feed(r)
        assert dec.has_partial, name
