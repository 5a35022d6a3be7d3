"""A conversation's branch tree as an inline SVG: one lane per branch, one row per request.

Lanes are branches in order of first appearance (``main`` first), rows the requests oldest
first, at most ``MAX_ROWS`` of them (the caption says when more were left out). Each request is
a circle linking to its detail page with a tooltip; each one with a parent among the rows gets
an edge to it (straight in a lane, an S-curve into another lane). Geometry is in attributes,
looks in CSS classes: no inline style, no script; every text from traffic is escaped.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from markupsafe import Markup

from nexus.application.ports.conversation_queries import BranchKind, ConversationNode, ConversationTree
from nexus.domain.conversation.branches import MAIN, branch_kind
from nexus.domain.outcome import is_error
from nexus.entrypoints.dashboard.formatting import clock, money, when

__all__ = ["MAX_ROWS", "conversation_graph"]

MAX_ROWS = 400  # beyond a few hundred nodes the SVG stops being readable and costs 100s of ms
_LANE = 28  # lane width
_ROW = 22  # row height
_GUTTER = 64  # room for the time of each row
_RADIUS = 6
_LABEL_CHARS = 28  # lane labels are cut to this many characters (the full name is the tooltip)
_UNLINKED = ""  # lane of requests not linked to a branch yet


@dataclass(frozen=True, slots=True)
class _Lane:
    branch_id: str
    kind: BranchKind
    x: int

    @property
    def label(self) -> str:
        name = self.branch_id or "(unlinked)"
        return name if len(name) <= _LABEL_CHARS else name[: _LABEL_CHARS - 1] + "…"


def conversation_graph(
    tree: ConversationTree,
    request_url: Callable[[uuid.UUID], str],
    *,
    current: uuid.UUID | None = None,
    max_rows: int = MAX_ROWS,
) -> Markup:
    """The tree as ``<figure class="conversation-graph">`` holding the SVG and a caption.

    ``request_url`` gives each node's link; ``current`` (a request id) is marked ``node-current``.
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
    width = _GUTTER + len(lanes) * _LANE + header  # labels lean right by up to their height
    height = header + len(nodes) * _ROW + 8
    svg = Markup(
        '<svg class="graph-svg" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}"'
        ' role="img" aria-label="Branch graph">{}{}{}</svg>'
    ).format(
        _lane_marks(lanes.values(), header, height),
        Markup().join(_edge(node, rows, lanes) for node in nodes),
        Markup().join(_node(node, rows, lanes, request_url, current) for node in nodes),
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


def _node(
    node: ConversationNode,
    rows: dict[uuid.UUID, tuple[int, int]],
    lanes: dict[str, _Lane],
    request_url: Callable[[uuid.UUID], str],
    current: uuid.UUID | None,
) -> Markup:
    x, y = rows[node.request_id]
    classes = f"node node-{lanes[_branch(node)].kind}{_state_class(node)}"
    if node.request_id == current:
        classes += " node-current"
    return Markup(
        '<text class="graph-time" x="4" y="{ty}">{time}</text>'
        '<a class="graph-link" href="{href}"><circle class="{classes}" cx="{x}" cy="{y}" r="{r}">'
        "<title>{tooltip}</title></circle></a>"
    ).format(
        ty=y + 4,
        time=clock(node.timestamp),
        href=request_url(node.request_id),
        classes=classes,
        x=x,
        y=y,
        r=_RADIUS,
        tooltip=_tooltip(node),
    )


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
    if node.title:
        lines.append(node.title[:200])
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
