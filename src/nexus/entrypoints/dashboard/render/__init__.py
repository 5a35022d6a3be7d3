"""Pure HTML rendering for the dashboard: Markdown, stored conversations and the branch graph.

Everything here returns ``markupsafe.Markup`` built from escaped parts only; no inline style, no
script, no event handler, so the output is safe under the dashboard's strict CSP.
"""
