"""The app as an MCP server (on by default, gradio[mcp]): an MCP client lists the tools,
reads which models the translate tool accepts, and translates a photo through it."""

from __future__ import annotations

import asyncio
import base64
import io

import httpx
import pytest
from helpers.catalog import PROJECT, RESNET
from helpers.images import random_image
from PIL import Image

pytest.importorskip("mcp", reason="gradio[mcp] is in requirements.txt")
from mcp import ClientSession  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

pytestmark = pytest.mark.slow


def _translate_tool(tools) -> object:
    (tool,) = [t for t in tools if t.name.endswith("translate")]
    return tool


async def _session_call(url: str, arguments: dict):
    async with streamable_http_client(f"{url}/gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = (await session.list_tools()).tools
            result = await session.call_tool(_translate_tool(tools).name, arguments)
            return tools, result


def test_the_translate_tool_lists_runnable_models_and_translates(app_servers):
    app = app_servers.get()
    schema = httpx.get(f"{app.url}/gradio_api/mcp/schema", timeout=60).json()
    (tool,) = [t for t in schema if t["name"].endswith("translate")]
    models = tool["inputSchema"]["properties"]["model_id"]["enum"]
    assert RESNET.id in models
    assert "custom" not in models, "the page-only 'Your own model' is not a tool's choice"
    assert PROJECT.id not in models, "unpublished models are left out"
    # Only the documented endpoint is a tool: the page's private events are not.
    assert len(schema) == 1, [t["name"] for t in schema]

    buffer = io.BytesIO()
    random_image(40, 24).save(buffer, format="PNG")
    photo = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    tools, result = asyncio.run(_session_call(app.url, {"image": photo, "model_id": RESNET.id}))
    assert not result.isError, result.content
    images = [c for c in result.content if c.type == "image"]
    texts = " ".join(getattr(c, "text", "") for c in result.content)
    if images:  # the tool returns the PNG inline, or a URL to it
        out = Image.open(io.BytesIO(base64.b64decode(images[0].data)))
    else:
        url = next(w for w in texts.split() if w.startswith("http")).strip("'\"()")
        out = Image.open(io.BytesIO(httpx.get(url, timeout=60).content))
    assert out.size == (40, 24)
