"""Frames for a child's stdin are written once per turn of the event loop, in order."""

from __future__ import annotations

import asyncio
import os

from nexus.adapters.pipe_frames import Outbox, frame


async def _pipe() -> tuple[int, asyncio.StreamWriter]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.connect_write_pipe(
        lambda: asyncio.streams.FlowControlMixin(loop), os.fdopen(write_fd, "wb", buffering=0)
    )
    return read_fd, asyncio.StreamWriter(transport, protocol, None, loop)


def _available(fd: int) -> bytes:
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""


def test_frames_sent_in_one_turn_reach_the_pipe_together_at_its_end_in_order() -> None:
    async def scenario() -> tuple[bytes, bytes, int]:
        read_fd, writer = await _pipe()
        outbox = Outbox()
        for body in (b"first", b"second", b"third"):
            outbox.send(writer, frame(body))
        held, before = outbox.size, _available(read_fd)
        await asyncio.sleep(0)  # the loop's turn ends: the flush runs
        after = _available(read_fd)
        writer.close()
        os.close(read_fd)
        return before, after, held

    before, after, held = asyncio.run(scenario())

    assert before == b""
    assert after == frame(b"first") + frame(b"second") + frame(b"third")
    assert held == len(after)


def test_discarded_frames_are_never_written_and_a_closed_pipe_is_left_alone() -> None:
    async def scenario() -> bytes:
        read_fd, writer = await _pipe()
        outbox = Outbox()
        outbox.send(writer, frame(b"for a child that died"))
        outbox.discard()
        outbox.send(writer, frame(b"after the pipe closed"))
        writer.close()
        await asyncio.sleep(0)
        got = _available(read_fd)
        os.close(read_fd)
        return got

    assert asyncio.run(scenario()) == b""


def test_with_a_delay_frames_of_several_turns_go_out_together_once_it_has_passed() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        read_fd, writer = await _pipe()
        outbox = Outbox(delay_s=0.05)
        for body in (b"first", b"second"):
            outbox.send(writer, frame(body))
            await asyncio.sleep(0)  # another turn of the loop
        early = _available(read_fd)
        await asyncio.sleep(0.1)
        later = _available(read_fd)
        writer.close()
        os.close(read_fd)
        return early, later

    early, later = asyncio.run(scenario())

    assert early == b""
    assert later == frame(b"first") + frame(b"second")


def test_frames_past_the_size_limit_go_out_at_once() -> None:
    async def scenario() -> tuple[bytes, int]:
        read_fd, writer = await _pipe()
        outbox = Outbox(delay_s=60.0, max_bytes=100)
        outbox.send(writer, frame(b"x" * 60))
        outbox.send(writer, frame(b"y" * 60))
        await asyncio.sleep(0)
        got, held = _available(read_fd), outbox.size
        writer.close()
        os.close(read_fd)
        return got, held

    got, held = asyncio.run(scenario())

    assert got == frame(b"x" * 60) + frame(b"y" * 60)
    assert held == 0
