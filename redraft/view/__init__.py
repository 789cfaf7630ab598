"""See a correction in a browser: a static file per run or experiment, or a local read-only server.

Needs ``pip install "redraft[view]"`` (Jinja2, Starlette, uvicorn).
"""

from redraft.view.app import create_app
from redraft.view.render import render_static

__all__ = ["create_app", "render_static"]
