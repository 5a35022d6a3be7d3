"""The HTTP delivery layer: Litestar app, the proxy route and the side calls."""
