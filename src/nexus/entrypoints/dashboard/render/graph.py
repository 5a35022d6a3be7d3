"""A conversation's branch tree as an inline SVG: one lane per branch, one row per request.

Lanes are branches in order of first appearance (``main`` first), rows the requests oldest
first, at most ``MAX_ROWS`` of them (the caption says when more were left out). Each request is
a circle with a tooltip, linking to its detail page, or, given its ``NodeText``, labelled with
its own turn's text and linking to that turn in the transcript beside the graph. A circle
is small for a finger: a larger transparent one around it, and the label, are in the link too.
Each request with a parent among the rows gets an edge to it (straight in a lane, an S-curve
into another lane). The SVG is drawn in CSS pixels (no viewBox, so nothing scales): its width
is the least the lanes and labels need, and CSS stretches it to its card. Geometry is in
attributes, looks in CSS classes: no inline style, no script; every text from traffic is escaped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from markupsafe import Markup

from nexus.application.ports.conversation_queries import BranchKind, ConversationNode, ConversationTree
from nexus.domain.conversation.branches import MAIN, branch_kind
from nexus.domain.outcome import is_error
from nexus.entrypoints.dashboard.formatting import clock, money, when

__all__ = ["MAX_ROWS", "NodeText", "conversation_graph"]

MAX_ROWS = 400  # beyond a few hundred nodes the SVG stops being readable and costs 100s of ms
_LANE = 28  # lane width
_ROW = 22  # row height
_GUTTER = 64  # room for the time of each row
_RADIUS = 6
_HIT_RADIUS = 11  # the tap target around each circle (a row is 22 px: neighbours do not overlap)
_LABEL_ROOM = 220  # the least width kept for node labels right of the lanes (a phone has ~350 px)
_NODE_LABEL_CHARS = 44
_LABEL_CHARS = 28  # lane labels are cut to this many characters (the full name is the tooltip)
_UNLINKED = ""  # lane of requests not linked to a branch yet


@dataclass(frozen=True, slots=True)
class NodeText:
    """What a node says of its own request: ``label`` beside it, ``title`` atop its tooltip,
    and ``href``, where a tap on it leads (the request's turn in the transcript)."""

    label: str
    title: str
    href: str


@dataclass(frozen=True, slots=True)
class _Lane:
    branch_id: str
    kind: BranchKind
    x: int

    @property
    def label(self) -> str:
        return _cut(self.branch_id or "(unlinked)", _LABEL_CHARS)


def conversation_graph(
    tree: ConversationTree,
    request_url: Callable[[uuid.UUID], str],
    *,
    current: uuid.UUID | None = None,
    max_rows: int = MAX_ROWS,
    texts: Mapping[uuid.UUID, NodeText] | None = None,
) -> Markup:
    """The tree as ``<figure class="conversation-graph">`` holding the SVG and a caption.

    ``request_url`` gives the link of each node without a text in ``texts``; ``current`` (a
    request id) is marked ``node-current``.
    """
    nodes = sorted(tree.nodes, key=lambda node: node.timestamp)[:max_rows]
    lanes = _lanes(tree, nodes)
    caption = Markup('<figcaption class="graph-caption">{}</figcaption>').format(_caption(tree, len(nodes), len(lanes)))
    if not nodes:
        return Markup('<figure class="conversation-graph">{}</figure>').format(caption)
    header = 16 + int(max(len(lane.label) for lane in lanes.values()) * 4.8)
    rows = {
        node.request_id: (lanes[_branch(node)].x, header + index * _ROW + _ROW // 2) for index, node in enumerate(nodes)
    }
    lanes_end = _GUTTER + len(lanes) * _LANE
    # Lane labels lean right by up to their height; node labels need their room.
    width = lanes_end + max(header, _LABEL_ROOM if texts else 0)
    height = header + len(nodes) * _ROW + 8
    draw = _Drawing(rows=rows, lanes=lanes, label_x=lanes_end + 4, request_url=request_url, current=current)
    svg = Markup(
        '<svg class="graph-svg" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"'
        ' role="img" aria-label="Branch graph">{}{}{}</svg>'
    ).format(
        _lane_marks(lanes.values(), header, height),
        Markup().join(_edge(node, rows, lanes) for node in nodes),
        Markup().join(draw.node(node, (texts or {}).get(node.request_id)) for node in nodes),
        w=width,
        h=height,
    )
    return Markup('<figure class="conversation-graph">{}{}</figure>').format(svg, caption)


def _branch(node: ConversationNode) -> str:
    return node.branch_id if node.branch_id is not None else _UNLINKED


def _lanes(tree: ConversationTree, nodes: list[ConversationNode]) -> dict[str, _Lane]:
    kinds = {branch.branch_id: branch.kind for branch in tree.branches}
    order = list(dict.fromkeys(_branch(node) for node in nodes))
    if MAIN in order:
        order.remove(MAIN)
        order.insert(0, MAIN)
    return {
        branch: _Lane(branch, kinds.get(branch) or branch_kind(branch), _GUTTER + index * _LANE + _LANE // 2)
        for index, branch in enumerate(order)
    }


def _parent(node: ConversationNode, rows: dict[uuid.UUID, tuple[int, int]]) -> uuid.UUID | None:
    for parent in (node.parent_request_id, node.parent_task_request_id):
        if parent is not None and parent in rows:
            return parent
    return None


def _lane_marks(lanes: Iterable[_Lane], header: int, height: int) -> Markup:
    marks = [
        Markup(
            '<g class="lane lane-{kind}"><title>{name}</title>'
            '<line class="lane-line" x1="{x}" y1="{top}" x2="{x}" y2="{bottom}"/>'
            '<text class="lane-label" x="{x}" y="{base}" transform="rotate(-45 {x} {base})">{label}</text></g>'
        ).format(
            kind=lane.kind,
            name=lane.branch_id or "(unlinked)",
            label=lane.label,
            x=lane.x,
            top=header,
            bottom=height,
            base=header - 8,
        )
        for lane in lanes
    ]
    return Markup('<g class="lanes">{}</g>').format(Markup().join(marks))


def _edge(node: ConversationNode, rows: dict[uuid.UUID, tuple[int, int]], lanes: dict[str, _Lane]) -> Markup:
    parent = _parent(node, rows)
    if parent is None:
        return Markup()
    (px, py), (x, y) = rows[parent], rows[node.request_id]
    if px == x:
        path = f"M{px} {py}L{x} {y}"
    else:  # leave the parent's lane within one row, then run down the child's lane
        step = _ROW if y > py else -_ROW
        path = f"M{px} {py}C{px} {py + step // 2} {x} {py + step // 2} {x} {py + step}L{x} {y}"
    cross = " edge-cross" if px != x else ""
    return Markup('<path class="edge edge-{}{}" d="{}"/>').format(lanes[_branch(node)].kind, cross, path)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Drawing:
    rows: dict[uuid.UUID, tuple[int, int]]
    lanes: dict[str, _Lane]
    label_x: int
    request_url: Callable[[uuid.UUID], str]
    current: uuid.UUID | None

    def node(self, node: ConversationNode, text: NodeText | None) -> Markup:
        x, y = self.rows[node.request_id]
        classes = f"node node-{self.lanes[_branch(node)].kind}{_state_class(node)}"
        if node.request_id == self.current:
            classes += " node-current"
        tooltip = _tooltip(node)
        label = Markup()
        if text is not None:
            tooltip = f"{text.title}\n{tooltip}"
            label = Markup('<text class="node-label" x="{}" y="{}">{}</text>').format(
                self.label_x, y + 4, _cut(text.label, _NODE_LABEL_CHARS)
            )
        return Markup(
            '<text class="graph-time" x="4" y="{ty}">{time}</text>'
            '<a class="graph-link" href="{href}"{turn}><title>{tooltip}</title>'
            '<circle class="node-hit" cx="{x}" cy="{y}" r="{hit}"/>'
            '<circle class="{classes}" cx="{x}" cy="{y}" r="{r}"/>{label}</a>'
        ).format(
            ty=y + 4,
            time=clock(node.timestamp),
            href=text.href if text is not None else self.request_url(node.request_id),
            turn=Markup(' data-step="{}"').format(node.request_id) if text is not None else Markup(),
            tooltip=tooltip,
            x=x,
            y=y,
            hit=_HIT_RADIUS,
            classes=classes,
            r=_RADIUS,
            label=label,
        )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _state_class(node: ConversationNode) -> str:
    if is_error(node.status, node.state):
        return " node-error"
    return " node-cancelled" if node.state == "client_cancelled" else ""


def _tooltip(node: ConversationNode) -> str:
    tokens = f"tokens: {node.input_tokens or 0:,} in, {node.output_tokens or 0:,} out"
    cache = (node.cache_read_input_tokens or 0, node.cache_creation_input_tokens or 0)
    if any(cache):
        tokens += f" (cache {cache[0]:,} read, {cache[1]:,} written)"
    lines = [
        f"{node.branch_id or '(unlinked)'} · {node.model or 'unknown model'}",
        when(node.timestamp),
        tokens,
        f"cost: {money(node.cost_usd)}",
        f"state: {node.state} ({node.status})",
    ]
    # Not ``node.title``: that is the conversation's first message, the same on every node.
    return "\n".join(lines)


def _caption(tree: ConversationTree, shown: int, lanes: int) -> str:
    if not shown:
        return "No requests to draw."
    text = f"{_count(shown, 'request')} in {_count(lanes, 'branch')}"
    if shown < len(tree.nodes) or tree.truncated:
        total = max(tree.conversation.request_count, len(tree.nodes))
        text += f"; only the first {shown:,} of {total:,} requests are drawn"
    return text + "."


def _count(number: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("ch") else "s")
    return f"{number:,} {noun if number == 1 else plural}"
