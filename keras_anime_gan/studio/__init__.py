"""The studio: explore and edit a generator in the browser (`keras-anime-gan studio SOURCE`).

`engine` opens the source (a run folder, a .keras file, an NVIDIA .pkl, an exported SavedModel or
a TF Serving URL) and draws; `app` is the web app (Starlette, served by uvicorn: the optional extra
`studio`); `static/` is the page, plain HTML, JavaScript and CSS, served from here (no CDN).
"""

from __future__ import annotations

import sys
import threading
import time

from ..errors import UserError

EXTRA = 'pip install -e ".[studio]"'


def require_web_stack():
    """A UserError naming the extra when Starlette or uvicorn is missing."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UserError(f"the studio needs its web server ({error.name} is not installed): {EXTRA}") from None


def serve(source, host="127.0.0.1", port=7860, ready=None):
    """Open `source` and serve the studio on http://host:port until interrupted. `ready(url)` is
    called once the server listens (by default the address is printed on stderr)."""
    require_web_stack()
    import uvicorn

    from .app import create_app
    from .engine import open_source

    _check_address(host, port)
    engine = open_source(source)
    url = f"http://{host if ':' not in host else '[' + host + ']'}:{port}/"
    announce = ready or (lambda link: print(f"studio: {link} ({engine.label}); Ctrl-C stops it", file=sys.stderr,
                                            flush=True))
    config = uvicorn.Config(create_app(engine), host=host, port=int(port), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: the studio listens on {host}: other machines can reach it, and it has no login",
              file=sys.stderr, flush=True)

    def announce_when_listening():
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        if server.started:
            announce(url)

    threading.Thread(target=announce_when_listening, daemon=True).start()
    server.run()


def _check_address(host, port):
    """A UserError now, rather than uvicorn's exit later, when host:port cannot be listened on."""
    import socket

    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise UserError(f"--port must be in 1..65535, got {port!r}")
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        raise UserError(f"cannot serve on {host}:{port}: {error.strerror or error} (pick another --port or "
                        "--host)") from None
