"""The studio's web app: a Starlette application around one `Engine`, serving one static page.

Routes (JSON unless said otherwise; a bad request answers 400 {"error": one line}, and the server
goes on serving):

    GET  /                       the page (static/index.html, with its .js and .css under /static)
    GET  /api/info               the source: kind, resolution, style layers and groups, disabled controls
    POST /api/render             state -> {"image": PNG base64, "command": explore command line or null}
    POST /api/grid               {"seeds": [...], "psi"} -> {"images": [PNG base64, ...]}
    POST /api/directions         {"method", "layers", "k"} -> {"values", "sigmas"}
    POST /api/download/png       state -> the picture (image/png, attachment)
    POST /api/download/latent    state -> its latent (.npy, attachment)
    POST /api/download/gif       {"state", "gif": "walk" | "plane", "direction"} -> image/gif
    POST /api/project?space=&steps=   body: the image file (at most MAX_UPLOAD bytes) -> {"id"}
    GET  /api/project/{id}       {"step", "steps", "loss", "preview", "done", "error", "psnr"}
    POST /api/project/{id}/stop

The browser sends settings and image bytes only: it never names a file on the server.
"""

from __future__ import annotations

import base64
import io
import json
import os
import sys
import traceback

import numpy as np
from PIL import Image

from ..errors import UserError
from .engine import ProjectionJobs
from .interface import MAX_GRID

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
MAX_UPLOAD = 16 * 1024 * 1024  # bytes of one uploaded image
MAX_BODY = 64 * 1024  # bytes of a JSON request
DRAIN = 1024 * 1024 * 1024  # bytes of an oversized body read (and dropped) before the 413 answer


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def _b64_png(image) -> str:
    return base64.b64encode(png_bytes(image)).decode("ascii")


def create_app(engine):
    """The Starlette app for `engine` (`studio.engine.open_source`); the handlers find the engine and
    its projection jobs on `app.state`."""
    from starlette.applications import Starlette
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    routes = [Route(path, _handled(handler), methods=methods) for path, handler, methods in _ROUTES]
    app = Starlette(routes=routes + [Mount("/static", StaticFiles(directory=STATIC), name="static")])
    app.state.engine = engine
    app.state.jobs = ProjectionJobs(engine)
    return app


def _handled(function):
    """`function` as an endpoint: a UserError answers 400, an oversized body 413, a bug 500 (logged);
    the server goes on serving."""
    async def endpoint(request):
        try:
            return await function(request)
        except UserError as error:
            return _json({"error": str(error)}, status_code=400)
        except _TooLarge as error:
            return _json({"error": str(error)}, status_code=413)
        except Exception as error:  # noqa: BLE001 - a bug: logged, answered, and the server goes on
            traceback.print_exc(file=sys.stderr)
            return _json({"error": f"internal error: {type(error).__name__}: {error}"}, status_code=500)

    return endpoint


def _json(value, status_code=200):
    from starlette.responses import JSONResponse

    return JSONResponse(value, status_code=status_code)


def _attachment(data, media_type, filename):
    from starlette.responses import Response

    return Response(data, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


async def _in_thread(function, *args):
    """`function(*args)` in Starlette's thread pool: drawing does not hold up the event loop."""
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(function, *args)


async def _json_body(request) -> dict:
    body = await _read(request, MAX_BODY, "a request")
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise UserError("the request is not JSON") from None
    if not isinstance(value, dict):
        raise UserError("the request must be a JSON object")
    return value


def _grid_request(body) -> tuple[list, float]:
    """The seeds and psi of a seed-grid request, checked."""
    seeds = body.get("seeds")
    if (not isinstance(seeds, list) or not 1 <= len(seeds) <= MAX_GRID
            or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in seeds)):
        raise UserError(f"seeds must be a list of 1 to {MAX_GRID} seeds (integers 0..2147483647)")
    psi = body.get("psi", 1.0)
    if isinstance(psi, bool) or not isinstance(psi, (int, float)) or not np.isfinite(psi):
        raise UserError(f"psi must be a finite number, got {psi!r}")
    return seeds, float(psi)


async def _upload(request) -> tuple[bytes, str | None, int]:
    """The uploaded image of a projection request (at most MAX_UPLOAD bytes), its space and steps."""
    space = request.query_params.get("space") or None
    try:
        steps = int(request.query_params.get("steps", "300"))
    except ValueError:
        raise UserError("steps must be an integer") from None
    data = await _read(request, MAX_UPLOAD, "an uploaded image")
    if not data:
        raise UserError("no image uploaded (the request body is empty)")
    return data, space, steps


async def index(request):
    from starlette.responses import FileResponse

    return FileResponse(os.path.join(STATIC, "index.html"), headers={"Cache-Control": "no-store"})


async def info(request):
    return _json({**request.app.state.engine.info(), "max_upload": MAX_UPLOAD})


async def render(request):
    engine, state = request.app.state.engine, await _json_body(request)

    def work():
        image, _ = engine.render(state)
        return {"image": _b64_png(image), "command": engine.command(state)}

    return _json(await _in_thread(work))


async def grid(request):
    seeds, psi = _grid_request(await _json_body(request))
    images = await _in_thread(request.app.state.engine.grid, seeds, psi)
    return _json({"images": [_b64_png(image) for image in images]})


async def directions(request):
    engine, body = request.app.state.engine, await _json_body(request)
    if not hasattr(engine, "directions"):
        raise UserError("directions " + engine.disabled().get("directions", "are not available here"))
    found = await _in_thread(engine.directions, body.get("method"), body.get("layers") or "all", body.get("k", 8))
    return _json({"values": [float(v) for v in found.values], "sigmas": [float(s) for s in found.sigmas]})


async def download_png(request):
    image, _ = await _in_thread(request.app.state.engine.render, await _json_body(request))
    return _attachment(png_bytes(image), "image/png", "studio.png")


async def download_latent(request):
    _, latent = await _in_thread(request.app.state.engine.render, await _json_body(request))
    if latent is None:
        raise UserError("this picture comes from the served model's generate signature (seed and psi): it has "
                        "no latent to save; set psi to 1")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(latent, np.float32), allow_pickle=False)
    return _attachment(buffer.getvalue(), "application/octet-stream", "studio-latent.npy")


async def download_gif(request):
    engine, body = request.app.state.engine, await _json_body(request)
    state, kind = body.get("state") or {}, body.get("gif")
    if kind not in ("walk", "plane"):
        raise UserError(f"gif must be walk or plane, got {kind!r}")
    if not hasattr(engine, "walk_gif"):
        raise UserError("GIFs of walks " + engine.disabled()["directions"])
    if kind == "walk":
        data = await _in_thread(engine.walk_gif, state, body.get("direction", 0))
    else:
        data = await _in_thread(engine.plane_gif, state)
    return _attachment(data, "image/gif", f"studio-{kind}.gif")


async def project_start(request):
    data, space, steps = await _upload(request)
    key = await _in_thread(request.app.state.jobs.start, data, space, steps)
    return _json({"id": key})


async def project_status(request):
    job = request.app.state.jobs.status(request.path_params["key"])
    preview = job.get("preview")
    return _json({"id": job["id"], "step": job["step"], "steps": job["steps"], "loss": job["loss"],
                  "done": job["done"], "error": job["error"], "psnr": job.get("psnr"),
                  "seconds": job.get("seconds"), "space": job["space"],
                  "preview": None if preview is None else _b64_png(preview), "target": _b64_png(job["target"])})


async def project_stop(request):
    request.app.state.jobs.stop(request.path_params["key"])
    return _json({"stopped": True})


_ROUTES = [  # path, handler, methods (None: GET)
    ("/", index, None),
    ("/api/info", info, None),
    ("/api/render", render, ["POST"]),
    ("/api/grid", grid, ["POST"]),
    ("/api/directions", directions, ["POST"]),
    ("/api/download/png", download_png, ["POST"]),
    ("/api/download/latent", download_latent, ["POST"]),
    ("/api/download/gif", download_gif, ["POST"]),
    ("/api/project", project_start, ["POST"]),
    ("/api/project/{key}", project_status, None),
    ("/api/project/{key}/stop", project_stop, ["POST"]),
]


class _TooLarge(Exception):
    pass


async def _read(request, limit, what) -> bytes:
    """The request body; past `limit` bytes the rest is read and dropped (up to DRAIN bytes, so that the
    client, which is still sending, gets the answer) and the request refused with 413."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        elif size > DRAIN:
            break
    if size > limit:
        readable = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit // 1024} KiB"
        raise _TooLarge(f"{what} may be at most {readable}; this one is {size:,} bytes or more")
    return b"".join(chunks)
