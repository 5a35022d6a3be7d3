"""The dashboard's branch graph: lanes, rows, edges, links, and nothing from traffic executes."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from markupsafe import Markup

from nexus.application.ports.conversation_queries import (
    BranchKind,
    ConversationBranch,
    ConversationNode,
    ConversationSummary,
    ConversationTree,
)
from nexus.domain.conversation.branches import branch_kind
from nexus.entrypoints.dashboard.render.graph import MAX_ROWS, NodeText, conversation_graph

START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SVG_TAGS = {"figure", "figcaption", "svg", "g", "title", "line", "text", "path", "a", "circle"}
PAYLOAD = '"><svg onload=alert(1)><script>alert(1)</script><img src=x onerror=alert(1)>'


def _id(number: int) -> uuid.UUID:
    return uuid.UUID(int=number)


def _url(request_id: uuid.UUID) -> str:
    return f"/dashboard/requests/{request_id}"


def _node(
    number: int,
    branch: str | None = "main",
    parent: int | None = None,
    *,
    task_parent: int | None = None,
    state: str = "complete",
    status: int = 200,
    model: str | None = "claude-sonnet-4-5",
    title: str | None = None,
    cost: str | None = "0.0123",
) -> ConversationNode:
    return ConversationNode(
        request_id=_id(number),
        timestamp=START + timedelta(seconds=number),
        branch_id=branch,
        parent_request_id=_id(parent) if parent is not None else None,
        parent_task_request_id=_id(task_parent) if task_parent is not None else None,
        is_subtask=branch is not None and branch.startswith("subtask_"),
        spawn_tool_use_id=None,
        link_method="chain",
        model=model,
        state=state,
        status=status,
        input_tokens=1200,
        output_tokens=34,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=5000,
        cost_usd=cost,
        duration_ms=812.0,
        title=title,
    )


def _tree(
    nodes: list[ConversationNode], *, truncated: bool = False, kinds: dict[str, BranchKind] | None = None
) -> ConversationTree:
    names = list(dict.fromkeys(node.branch_id for node in nodes if node.branch_id is not None))
    kinds = kinds or {}
    branches = [
        ConversationBranch(
            branch_id=name,
            kind=kinds.get(name) or branch_kind(name),
            parent_branch_id=None if name == "main" else "main",
            first_request_id=_id(1),
            request_count=1,
            input_tokens=0,
            output_tokens=0,
            cost_usd=None,
            first_at=START,
            last_at=START,
        )
        for name in names
    ]
    summary = ConversationSummary(
        conversation_id=_id(1),
        domain="example.com",
        account_id=None,
        first_at=START,
        last_at=START,
        request_count=len(nodes) + (100 if truncated else 0),
        branch_count=len(branches),
        subtask_count=0,
        compact_count=0,
        models=[],
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
        cost_usd=None,
        latest_request_id=_id(len(nodes)),
        title=None,
    )
    return ConversationTree(conversation=summary, nodes=nodes, branches=branches, subagents=[], truncated=truncated)


def _conversation() -> list[ConversationNode]:
    """Main line, an edit branch, a sub-agent launched from main, a compaction, a failure."""
    return [
        _node(1),
        _node(2, parent=1),
        _node(3, "branch_20250301120003", parent=1),
        _node(4, "subtask_1", parent=2, task_parent=2),
        _node(5, "subtask_1", parent=4, task_parent=2),
        _node(6, parent=2, state="upstream_error"),
        _node(7, "compact_20250301120007", parent=6),
        _node(8, "compact_20250301120007", parent=7, state="client_cancelled"),
    ]


class _Svg(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def all(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.elements if name == tag]

    def nodes(self) -> list[dict[str, str | None]]:
        """The drawn circles, without the tap targets around them."""
        return [attrs for attrs in self.all("circle") if attrs.get("class") != "node-hit"]


def _parse(html: str) -> _Svg:
    """Parse, checking the markup is inert: our tags only, no handler, no style, no script."""
    svg = _Svg()
    svg.feed(html)
    svg.close()
    assert {tag for tag, _ in svg.elements} <= SVG_TAGS
    for tag, attrs in svg.elements:
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        assert attrs.get("href") is None or str(attrs["href"]).startswith(("/dashboard/requests/", "#turn-"))
    assert "<script" not in html
    assert "style=" not in html
    assert re.search(r"<[^>]*\bon\w+=", html) is None
    return svg


def test_lanes_are_branches_in_order_of_first_appearance_main_first() -> None:
    nodes = [_node(1, "subtask_3"), _node(2, "main", parent=None), _node(3, "branch_x", parent=2)]
    svg = _parse(conversation_graph(_tree(nodes), _url))
    labels = [attrs for attrs in svg.all("text") if attrs.get("class") == "lane-label"]
    assert len(labels) == 3
    lanes = [attrs["class"] for attrs in svg.all("g") if str(attrs.get("class")).startswith("lane ")]
    assert lanes == ["lane lane-main", "lane lane-subtask", "lane lane-branch"]
    text = "".join(svg.texts)
    assert text.index("main") < text.index("subtask_3") < text.index("branch_x")
    circles = svg.nodes()
    x = {str(attrs["class"]).split()[1]: attrs["cx"] for attrs in circles}
    assert int(str(x["node-main"])) < int(str(x["node-subtask"])) < int(str(x["node-branch"]))


def test_every_request_is_a_linked_circle_classed_by_its_branch_kind_and_state() -> None:
    nodes = _conversation()
    html = conversation_graph(_tree(nodes), _url, current=_id(5))
    assert isinstance(html, Markup)
    svg = _parse(html)
    assert [attrs["href"] for attrs in svg.all("a")] == [_url(node.request_id) for node in nodes]
    assert [attrs["class"] for attrs in svg.nodes()] == [
        "node node-main",
        "node node-main",
        "node node-branch",
        "node node-subtask",
        "node node-subtask node-current",
        "node node-main node-error",
        "node node-compact",
        "node node-compact node-cancelled",
    ]
    ys = [int(str(attrs["cy"])) for attrs in svg.nodes()]
    assert ys == sorted(ys)
    assert len(set(ys)) == len(nodes)
    hits = [attrs for attrs in svg.all("circle") if attrs.get("class") == "node-hit"]
    assert [(hit["cx"], hit["cy"]) for hit in hits] == [(node["cx"], node["cy"]) for node in svg.nodes()]
    radii = {int(str(hit["r"])) for hit in hits}
    assert radii == {11}, "a finger's width (22 px), as high as a row: neighbours do not overlap"


def test_one_edge_per_request_whose_parent_is_drawn() -> None:
    nodes = _conversation()
    svg = _parse(conversation_graph(_tree(nodes), _url))
    edges = svg.all("path")
    with_parent = [node for node in nodes if node.parent_request_id is not None]
    assert len(edges) == len(with_parent) == 7
    classes = [str(attrs["class"]) for attrs in edges]
    assert classes.count("edge edge-main") == 2
    assert "edge edge-branch edge-cross" in classes
    assert "edge edge-subtask edge-cross" in classes
    assert "edge edge-subtask" in classes
    assert "edge edge-compact edge-cross" in classes
    straight = next(attrs for attrs in edges if attrs["class"] == "edge edge-main")
    assert re.fullmatch(r"M\d+ \d+L\d+ \d+", str(straight["d"]))
    curved = next(attrs for attrs in edges if attrs["class"] == "edge edge-branch edge-cross")
    assert re.fullmatch(r"M\d+ \d+C\d+ \d+ \d+ \d+ \d+ \d+L\d+ \d+", str(curved["d"]))


def test_edges_fall_back_to_the_launching_request_and_skip_parents_not_drawn() -> None:
    nodes = [
        _node(1),
        _node(2, "subtask_1", task_parent=1),  # only the launching request is known
        _node(3, parent=99),  # parent older than the loaded window
        _node(4, "branch_y"),  # a root of its own
    ]
    svg = _parse(conversation_graph(_tree(nodes), _url))
    assert len(svg.all("path")) == 1


def test_text_from_traffic_is_escaped() -> None:
    branch = f"branch_{PAYLOAD}"
    nodes = [
        _node(1, model=PAYLOAD, title=PAYLOAD, cost=PAYLOAD),
        _node(2, branch, parent=1, state=PAYLOAD, title="</title><script>alert(1)</script>"),
    ]

    def hostile_url(request_id: uuid.UUID) -> str:
        return f'/dashboard/requests/{request_id}?x="><script>alert(1)</script>'

    texts = {_id(2): NodeText(label=PAYLOAD, title="</title><script>alert(1)</script>", href="#turn-x")}
    html = conversation_graph(_tree(nodes, kinds={branch: "branch"}), hostile_url, texts=texts)
    svg = _parse(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&#34;&gt;&lt;svg onload=alert(1)&gt;" in html
    assert [attrs["href"] for attrs in svg.all("a")] == [hostile_url(_id(1)), "#turn-x"]
    text = "".join(svg.texts)
    assert f"branch_{PAYLOAD}" in text  # the full name, in the lane's tooltip
    assert f"main · {PAYLOAD}" in text
    assert "</title><script>alert(1)</script>" in text


def test_a_long_branch_name_is_cut_in_the_label_and_whole_in_the_tooltip() -> None:
    branch = "branch_" + "x" * 60
    svg = _parse(conversation_graph(_tree([_node(1), _node(2, branch, parent=1)]), _url))
    label = [text for text in svg.texts if text.startswith("branch_x")]
    assert branch in label
    assert "branch_" + "x" * 20 + "…" in label


def test_the_tooltip_tells_branch_model_tokens_cost_state_and_time() -> None:
    svg = _parse(conversation_graph(_tree([_node(1, title="Fix the login bug")]), _url))
    tooltip = "".join(svg.texts)
    assert "main · claude-sonnet-4-5" in tooltip
    assert "2025-03-01 12:00:01 UTC" in tooltip
    assert "tokens: 1,200 in, 34 out (cache 5,000 read, 0 written)" in tooltip
    assert "cost: $0.0123" in tooltip
    assert "state: complete (200)" in tooltip
    assert "Fix the login bug" not in tooltip, "the conversation's first message is no node's own text"
    assert "12:00:01" in [text for text in svg.texts]  # the row's time in the gutter


def test_a_node_with_its_text_is_labelled_and_leads_to_its_turn() -> None:
    nodes = [_node(1), _node(2, parent=1)]
    texts = {
        _id(1): NodeText(
            label="Fix the login bug in the session middleware, please", title="Turn 1: Fix…", href="#turn-a"
        ),
        _id(2): NodeText(label=PAYLOAD, title=f"Turn 1: {PAYLOAD}", href="#turn-a"),
    }
    html = conversation_graph(_tree(nodes), _url, texts=texts)
    svg = _parse(html)
    assert [(attrs["href"], attrs["data-step"]) for attrs in svg.all("a")] == [
        ("#turn-a", str(_id(1))),
        ("#turn-a", str(_id(2))),
    ]
    labels = [attrs for attrs in svg.all("text") if attrs.get("class") == "node-label"]
    assert len(labels) == 2
    assert "Fix the login bug in the session middleware…" in svg.texts, "cut to fit beside the node"
    assert "Turn 1: Fix…\nmain · claude-sonnet-4-5" in "".join(svg.texts), "the turn first in the tooltip"
    assert "&lt;script&gt;" in html
    (attrs,) = svg.all("svg")
    lanes_end = int(str(svg.nodes()[0]["cx"])) + 14
    assert int(str(attrs["width"])) >= lanes_end + 220, "room for the labels"
    assert int(str(labels[0]["x"])) >= lanes_end, "labels right of the lanes"


def test_unlinked_requests_get_their_own_lane() -> None:
    svg = _parse(conversation_graph(_tree([_node(1), _node(2, None)]), _url))
    assert "(unlinked)" in svg.texts
    assert [attrs["class"] for attrs in svg.nodes()] == ["node node-main", "node node-branch"]


def test_the_drawing_grows_with_rows_and_lanes_in_css_pixels() -> None:
    def size(nodes: list[ConversationNode]) -> tuple[int, int]:
        svg = _parse(conversation_graph(_tree(nodes), _url))
        (attrs,) = svg.all("svg")
        assert "viewbox" not in attrs, "nothing scales: CSS widens it to its card, text keeps its size"
        return int(str(attrs["width"])), int(str(attrs["height"]))

    one = size([_node(1)])
    two_rows = size([_node(1), _node(2, parent=1)])
    two_lanes = size([_node(1), _node(2, "main_x", parent=1)])
    assert two_rows[1] > one[1]
    assert two_rows[0] == one[0]
    assert two_lanes[0] > one[0]


def test_rows_are_capped_and_the_caption_says_so() -> None:
    assert MAX_ROWS == 400
    nodes = [_node(1), *(_node(number, parent=number - 1) for number in range(2, 9))]
    svg = _parse(conversation_graph(_tree(nodes), _url, max_rows=5))
    assert len(svg.nodes()) == 5
    assert len(svg.all("path")) == 4
    caption = svg.texts[-1]
    assert caption == "5 requests in 1 branch; only the first 5 of 8 requests are drawn."


def test_the_caption_mentions_a_truncated_tree() -> None:
    svg = _parse(conversation_graph(_tree([_node(1)], truncated=True), _url))
    assert svg.texts[-1] == "1 request in 1 branch; only the first 1 of 101 requests are drawn."
    full = _parse(conversation_graph(_tree([_node(1), _node(2, "branch_b", parent=1)]), _url))
    assert full.texts[-1] == "2 requests in 2 branches."


def test_rows_follow_time_even_when_the_nodes_do_not() -> None:
    nodes = [_node(2, parent=1), _node(1)]
    svg = _parse(conversation_graph(_tree(nodes), _url))
    assert [attrs["href"] for attrs in svg.all("a")] == [_url(_id(1)), _url(_id(2))]


def test_an_empty_tree_is_only_a_caption() -> None:
    html = conversation_graph(_tree([]), _url)
    caption = '<figcaption class="graph-caption">No requests to draw.</figcaption>'
    assert html == f'<figure class="conversation-graph">{caption}</figure>'
