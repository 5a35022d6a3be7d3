"""Conversation linking under load: a backlog, live traffic and late arrivals (ADR 8).

Starts its own embedded PostgreSQL (data in a temporary directory, or ``--workdir``), migrates
it and makes Claude Code-shaped traffic in one domain: ``--conversations`` conversations of
``--turns`` main-line requests, each resending the growing history (user text, assistant tool
calls, tool results); one request in four launches two sub-agents (``Agent`` tool calls) whose
3-4 requests carry ``x-claude-code-agent-id``. Every request has a session id, and the
conversations run side by side, so arrivals mix. Rows are built as the recorder builds them.

1. Backlog: all rows stored (``build_row`` + ``SqlAlchemyExchangeStore``, batches of 500) with
   no linker running, then ``link_pending`` timed until the queue is empty. The conversation
   facts (``facts_from_body``, inside ``build_row``) are timed alone on the same bodies.
2. Live: a ``Linker`` running while the first ``--live-rows`` rows are stored 1-5 at a time
   every 20 ms; per row, the time from the store's commit to its link being visible (read when
   ``nexus_links`` is notified). The requirement: links within a second of the response ending.
3. Late arrivals: the same with every 10th row stored 2 s late, after later rows; the rows
   re-queued, and the rows whose links differ from an in-order ``rebuild_conversations`` of the
   same data afterwards, which must be 0.

Each part also counts links that differ from the ones the traffic was generated with.

    .venv/bin/python bench/linker_load.py [--conversations 30] [--turns 30] [--live-rows 1000] [--profile]

``--profile`` runs the backlog's linking under cProfile and prints the top functions and the
time per SQL statement to stderr. The embedded server is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import random
import re
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import payloads
import pg
import report
from recorder_load import profiled
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from nexus.adapters.persistence.database import open_engine
from nexus.adapters.persistence.embedded import start_embedded_postgres
from nexus.adapters.persistence.exchange_store import SqlAlchemyExchangeStore
from nexus.adapters.persistence.linking import LINKS_CHANNEL, Linker, rebuild_conversations, sql_link_work
from nexus.adapters.persistence.migrate import upgrade
from nexus.application.exchange import Exchange
from nexus.application.linking.run import link_pending
from nexus.application.recording.row import ExchangeRow, build_row
from nexus.domain.conversation.facts import facts_from_body

DOMAIN = "linking.bench"
STORE_BATCH = 500
LIVE_INTERVAL_S = 0.02
LATE_EVERY, LATE_S = 10, 2.0
_TEMPLATE = json.loads(payloads.claude_code_body(stream=False))  # its system prompt and tools
_BILLING = {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.330.abc; cc_entrypoint=cli;"}
MAIN_SYSTEM = [_BILLING, *_TEMPLATE["system"]]
AGENT_SYSTEM = [_BILLING, _TEMPLATE["system"][0], {"type": "text", "text": "You are an agent for Claude Code."}]
REMINDER = "<system-reminder>\nThe user opened src/app/routes.py in the IDE.\n</system-reminder>"
LINK_COLUMNS = "conversation_id, branch_id, parent_request_id, is_subtask, parent_task_request_id, spawn_tool_use_id,"
LINK_COLUMNS += " link_method"

# --- synthetic traffic ----------------------------------------------------------------------


class Thread:
    """The main line of a conversation or one sub-agent: each request resends the history."""

    def __init__(self, rng: random.Random, session: str, agent_id: str | None = None) -> None:
        self.rng, self.session, self.agent_id = rng, session, agent_id
        self.messages: list[dict[str, Any]] = []
        self.last_id: uuid.UUID | None = None

    def send(self, user: Any, answer: list[dict[str, Any]], at_ms: int) -> Exchange:
        self.messages.append({"role": "user", "content": user})
        body = {"model": payloads.MODEL, "max_tokens": 32000, "messages": self.messages, "stream": False,
                "system": AGENT_SYSTEM if self.agent_id else MAIN_SYSTEM, "tools": _TEMPLATE["tools"]}  # fmt: skip
        request_body = json.dumps(body, separators=(",", ":")).encode()
        stop = "tool_use" if any(block["type"] == "tool_use" for block in answer) else "end_turn"
        response = {"id": f"msg_{self.rng.getrandbits(80):020x}", "type": "message", "role": "assistant",
                    "model": payloads.MODEL, "content": answer, "stop_reason": stop, "stop_sequence": None,
                    "usage": {"input_tokens": 3, "cache_read_input_tokens": 20000, "output_tokens": 180}}  # fmt: skip
        self.messages.append({"role": "assistant", "content": answer})
        headers = [(b"host", b"127.0.0.1:3000"), (b"anthropic-version", b"2023-06-01"),
                   (b"content-type", b"application/json"), (b"user-agent", b"claude-cli/2.1.330 (external, cli)"),
                   (b"x-app", b"cli"), (b"x-claude-code-session-id", self.session.encode())]  # fmt: skip
        if self.agent_id:
            headers.append((b"x-claude-code-agent-id", self.agent_id.encode()))
        self.last_id = uuid.UUID(int=self.rng.getrandbits(128), version=4)
        return Exchange(
            request_id=str(self.last_id), method="POST", path="/v1/messages", query_string=b"beta=true",
            domain=DOMAIN, requested_model=payloads.MODEL, request_headers=headers,
            request_body=request_body, status=200,
            response_headers=[(b"content-type", b"application/json")],
            response_chunks=[json.dumps(response, separators=(",", ":")).encode()],
            started_at_ms=at_ms, upstream_started_s=0.001, first_byte_s=1.0, duration_s=1.5,
        )  # fmt: skip

    def tool(self, name: str, tool_input: dict[str, Any]) -> dict[str, Any]:
        return {"type": "tool_use", "id": f"toolu_01{self.rng.getrandbits(96):024x}", "name": name, "input": tool_input}


def _listing(rng: random.Random, tag: str) -> str:
    first = rng.randrange(1, 500)
    return "\n".join(
        f"{n:>6}\tdef handle_{tag}_{n}(request):  # returns route(request, {n})" for n in range(first, first + 30)
    )


def _results(thread: Thread, answer: list[dict[str, Any]], agent_texts: dict[str, str]) -> list[dict[str, Any]]:
    return [{"type": "tool_result", "tool_use_id": block["id"], "content": agent_texts.get(block["id"])
             or _listing(thread.rng, block["id"][-8:])} for block in answer if block["type"] == "tool_use"]  # fmt: skip


def conversation(index: int, turns: int, rng: random.Random, start_ms: int) -> Iterator[tuple[Exchange, tuple]]:
    """One conversation's exchanges, each with the link it should get: (conversation, branch, parent)."""
    main = Thread(rng, str(uuid.UUID(int=rng.getrandbits(128), version=4)))
    clock, conversation_id, subtasks = start_ms, None, 0
    user: Any = [{"type": "text", "text": REMINDER}, {"type": "text", "text": f"Task {index}: fix the router bug."}]
    for turn in range(turns):
        answer: list[dict[str, Any]] = [{"type": "text", "text": f"Step {turn} of task {index}: looking further."}]
        if turn % 4 == 1 and turn < turns - 1:
            answer += [main.tool("Agent", {"description": f"Explore {index}.{turn}.{j}", "subagent_type": "Explore",
                       "prompt": f"Task {index}, turn {turn}, part {j}: find every caller of handle_{j}."})
                       for j in (1, 2)]  # fmt: skip
        elif turn % 4 == 3 or turn == turns - 1:
            answer[0]["text"] += " Done; the router now matches trailing slashes."
        else:
            answer.append(main.tool("Read", {"file_path": f"/home/dev/app{index}/src/module_{turn}.py"}))
        parent = main.last_id
        exchange = main.send(user, answer, clock)
        conversation_id = conversation_id or main.last_id
        yield exchange, (conversation_id, "main", parent)
        clock += rng.randrange(1500, 6000)
        agent_texts: dict[str, str] = {}
        agent_clocks = [clock]
        for calls, block in enumerate(b for b in answer if b.get("name") == "Agent"):
            agent = Thread(rng, main.session, agent_id=f"a{rng.getrandbits(64):016x}")
            branch, at, steps = f"subtask_{subtasks + calls + 1}", clock + 20 * calls, rng.choice((3, 4))
            agent_user: Any = block["input"]["prompt"]
            for step in range(steps):
                reply = [{"type": "text", "text": f"Caller {step} of {block['id'][-6:]} found."}]
                if step < steps - 1:
                    reply.append(agent.tool("Grep", {"pattern": f"handle_{step}", "path": f"/home/dev/app{index}"}))
                parent = agent.last_id or main.last_id
                yield agent.send(agent_user, reply, at), (conversation_id, branch, parent)
                agent_user, at = _results(agent, reply, {}), at + rng.randrange(800, 4000)
            agent_texts[block["id"]] = f"Report of {block['id']}: 3 callers, all fixed."
            agent_clocks.append(at)
        subtasks += len(agent_texts)
        clock = max(agent_clocks)
        tool_results = _results(main, answer, agent_texts)
        user = tool_results or [{"type": "text", "text": f"Now step {turn + 1} of task {index}, please."}]


def traffic(conversations: int, turns: int, seed: int) -> tuple[list[Exchange], dict[str, tuple]]:
    """All conversations' exchanges in the order of their start, and the expected links by id."""
    rng = random.Random(seed)  # noqa: S311 -- synthetic traffic, reproducible
    base = int(time.time() * 1000) - 3_600_000
    made = [pair for c in range(conversations) for pair in conversation(c, turns, rng, base + rng.randrange(120_000))]
    made.sort(key=lambda pair: (pair[0].started_at_ms, pair[0].request_id))
    expected = {pair[0].request_id: tuple(None if v is None else str(v) for v in pair[1]) for pair in made}
    return [exchange for exchange, _ in made], expected


# --- the parts ------------------------------------------------------------------------------


async def links(engine: AsyncEngine) -> dict[str, tuple]:
    async with engine.connect() as connection:
        result = await connection.execute(text(f"SELECT id, {LINK_COLUMNS} FROM exchanges"))  # noqa: S608 -- constants
        return {str(row[0]): tuple(None if v is None else str(v) for v in row[1:]) for row in result.all()}


def not_as_generated(found: dict[str, tuple], expected: dict[str, tuple]) -> int:
    return sum(1 for key, link in found.items() if (link[0], link[1], link[2]) != expected[key])


async def scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql))).scalar_one()


async def pending(engine: AsyncEngine) -> int:
    return int(await scalar(engine, "SELECT count(*) FROM exchanges WHERE link_pending"))


def query_timer(engine: AsyncEngine) -> dict[str, list[float]]:
    """Calls and wall time per SQL statement (its head and its WHERE clause)."""
    spent: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    started: dict[int, float] = {}

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def before(_conn: Any, cursor: Any, *_: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def after(_conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        head, _, where = re.sub(r"_\d+$", "_N", " ".join(statement.split())).partition(" WHERE ")
        entry = spent[head[:40] + (" ... WHERE " + where[:90] if where else head[40:80])]
        entry[0] += 1
        entry[1] += time.perf_counter() - started.pop(id(cursor), time.perf_counter())

    return spent


async def backlog(engine: AsyncEngine, exchanges: list[Exchange], expected: dict, args: Any) -> tuple[dict, list]:
    store, known = SqlAlchemyExchangeStore(engine), dict[bytes, None]()
    rows: list[ExchangeRow] = []
    build_s = store_s = 0.0
    for start in range(0, len(exchanges), STORE_BATCH):
        began = time.perf_counter()
        batch = [build_row(e, store_bodies=True, known_parts=known) for e in exchanges[start : start + STORE_BATCH]]
        stored = time.perf_counter()
        await store.store(batch)
        build_s, store_s = build_s + stored - began, store_s + time.perf_counter() - stored
        known.update(dict.fromkeys(part.digest for row in batch for part in row.parts))
        rows += batch
    answers = [msgspec.json.decode(e.response_body) for e in exchanges]
    began = time.perf_counter()
    for exchange, answer in zip(exchanges, answers, strict=True):
        facts_from_body(exchange.request_body or b"", answer)
    facts_s = time.perf_counter() - began
    queries = query_timer(engine) if args.profile else None
    began = time.perf_counter()
    async with profiled(args.profile):
        counts = await link_pending(lambda: sql_link_work(engine))
    link_s = time.perf_counter() - began
    if queries is not None:
        print("\n--- SQL statements of the linking, by total wall time ---", file=sys.stderr)
        for statement, (calls, seconds) in sorted(queries.items(), key=lambda item: -item[1][1])[:15]:
            print(f"{seconds:7.3f} s {calls:>6} calls {1000 * seconds / calls:6.3f} ms  {statement}", file=sys.stderr)
    found = await links(engine)
    n = len(exchanges)
    return {
        "rows": n, "request_bytes_mean": sum(len(e.request_body or b"") for e in exchanges) // n,
        "build_us_per_row": round(build_s / n * 1e6), "facts_us_per_row": round(facts_s / n * 1e6),
        "facts_share_of_build_pct": round(100 * facts_s / build_s, 1), "store_us_per_row": round(store_s / n * 1e6),
        "link_s": round(link_s, 3), "linked": counts.linked, "rows_per_s": round(counts.linked / link_s, 1),
        "link_ms_per_row": round(link_s / counts.linked * 1000, 3),
        "pending_after": await pending(engine),
        "methods": dict(collections.Counter(link[-1] for link in found.values()).most_common()),
        "conversations": await scalar(engine, "SELECT count(*) FROM conversations"),
        "not_as_generated": not_as_generated(found, expected),
    }, rows  # fmt: skip


class Watcher:
    """When each stored row's link became visible: checked on every ``nexus_links`` notice
    (and after every store, for a row linked before its commit was noted)."""

    def __init__(self) -> None:
        self.committed: dict[str, float] = {}
        self.linked: dict[str, float] = {}
        self.wake = asyncio.Event()

    def stored(self, rows: list[ExchangeRow]) -> None:
        now = time.perf_counter()
        self.committed.update((str(row.id), now) for row in rows)
        self.wake.set()

    async def run(self, engine: AsyncEngine) -> None:
        async with engine.connect() as connection:
            driver: Any = (await connection.get_raw_connection()).driver_connection
            await driver.add_listener(LINKS_CHANNEL, lambda *_: self.wake.set())
            while True:
                await self.wake.wait()
                self.wake.clear()
                unseen = [key for key in self.committed if key not in self.linked]
                if unseen:
                    at = time.perf_counter()
                    sql = "SELECT id::text FROM exchanges WHERE NOT link_pending AND id = ANY($1::uuid[])"
                    self.linked.update((row[0], at) for row in await driver.fetch(sql, unseen))


def percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None  # noqa: E731
    return {"p50_ms": pick(0.5), "p95_ms": pick(0.95), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


async def live(engine: AsyncEngine, rows: list[ExchangeRow], expected: dict, *, late: bool, seed: int) -> dict:
    """Store ``rows`` in small batches with a linker running (every 10th 2 s late if ``late``)."""
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE exchanges, conversations"))  # body parts stay: rows reference them
    rng = random.Random(seed)  # noqa: S311 -- synthetic traffic, reproducible
    store, linker, watcher = SqlAlchemyExchangeStore(engine), Linker(engine), Watcher()
    tasks = [asyncio.create_task(watcher.run(engine)), asyncio.create_task(linker.run())]
    try:
        held: list[tuple[float, ExchangeRow]] = []
        position, began = 0, time.perf_counter()
        while position < len(rows) or held:
            now, batch = time.perf_counter(), []
            for index in range(position, min(len(rows), position + rng.randint(1, 5))):
                if late and index % LATE_EVERY == LATE_EVERY - 1:
                    held.append((now + LATE_S, rows[index]))
                else:
                    batch.append(rows[index])
                position = index + 1
            batch += [row for due, row in held if due <= now]
            held = [(due, row) for due, row in held if due > now]
            if batch:
                await store.store(batch)
                watcher.stored(batch)
            await asyncio.sleep(LIVE_INTERVAL_S)
        replay_s = time.perf_counter() - began
        deadline = time.monotonic() + 60
        while len(watcher.linked) < len(rows) or await pending(engine):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(rows) - len(watcher.linked)} rows still unlinked after 60 s")
            watcher.wake.set()
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    found = await links(engine)
    latency = [1000 * max(0.0, watcher.linked[key] - at) for key, at in watcher.committed.items()]
    result = {"rows": len(rows), "replay_s": round(replay_s, 2), "rows_per_s": round(len(rows) / replay_s, 1),
              **percentiles(latency), "over_1s": sum(ms > 1000 for ms in latency), "linked": linker.counts.linked,
              "changed": linker.counts.changed, "requeued": linker.counts.requeued,
              "not_as_generated": not_as_generated(found, expected)}  # fmt: skip
    if late:
        result["late_rows"] = len(rows) // LATE_EVERY
        began = time.perf_counter()
        rebuilt = await rebuild_conversations(engine, since=None)
        result["rebuild_s"] = round(time.perf_counter() - began, 2)
        after = await links(engine)
        result["rebuild_changed"] = rebuilt.changed
        result["differ_from_rebuild"] = sum(1 for key, link in found.items() if after.get(key) != link)
    return result


async def measure(url: str, args: argparse.Namespace) -> dict[str, Any]:
    exchanges, expected = traffic(args.conversations, args.turns, args.seed)
    async with open_engine(url) as engine:
        await upgrade(engine)
        result: dict[str, Any] = {"conversations": args.conversations, "turns": args.turns}
        result["backlog"], rows = await backlog(engine, exchanges, expected, args)
        live_rows = rows[: args.live_rows]
        result["live"] = await live(engine, live_rows, expected, late=False, seed=args.seed)
        result["late"] = await live(engine, live_rows, expected, late=True, seed=args.seed)
    return result


def run(args: argparse.Namespace) -> dict[str, Any]:
    owned = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="nexus-linker-")) if owned else Path(args.workdir)
    try:
        return asyncio.run(measure(start_embedded_postgres(workdir), args))
    finally:
        pg.stop_postgres(workdir / "postgres")  # it would stop when this process exits; now, deliberately
        if owned:
            import shutil  # noqa: PLC0415

            shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=30, help="conversations (default 30)")
    parser.add_argument("--turns", type=int, default=30, help="main-line requests per conversation (default 30)")
    parser.add_argument("--live-rows", type=int, default=1000, help="rows stored live, twice (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the synthetic traffic (default 1)")
    parser.add_argument("--workdir", help="directory for the server's data (default: a temp dir)")
    parser.add_argument("--profile", action="store_true", help="cProfile the backlog's linking (to stderr)")
    parser.add_argument("--json", action="store_true", help="print one LINKING_RESULT <json> line")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    def interrupted(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    result = run(args)
    print("LINKING_RESULT " + json.dumps(result) if args.json else "\n".join(report.linking_lines(result)), flush=True)
    wrong = result["late"]["differ_from_rebuild"] + sum(
        result[p]["not_as_generated"] for p in ("backlog", "live", "late")
    )
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
