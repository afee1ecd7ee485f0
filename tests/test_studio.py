"""The studio as a person uses it: a real server on 127.0.0.1 answering HTTP, the pictures it sends
checked against the library's for the same settings, bad input answered with one message while the
server keeps serving, the SavedModel and TF Serving sources, and a real browser (Debian's chromium
driven by Playwright) moving the controls and projecting a face.

Set STUDIO_SCREENSHOTS=docs to write the browser test's screenshots into docs/ (the README shows
one), and STUDIO_RUN=RUN_FOLDER to open a trained run instead of the test's random-initialised one.
"""

import base64
import contextlib
import http.server
import io
import json
import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason='the studio extra is not installed (pip install -e ".[studio]")')
pytest.importorskip("uvicorn", reason='the studio extra is not installed (pip install -e ".[studio]")')

from keras_anime_gan import create_gan, edit  # noqa: E402
from keras_anime_gan.errors import UserError  # noqa: E402
from keras_anime_gan.studio import engine as engines  # noqa: E402
from keras_anime_gan.studio.app import MAX_UPLOAD, create_app  # noqa: E402

from conftest import SCRATCH  # noqa: E402

RES = 32
CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(engine):
    """The studio app of `engine` served by uvicorn on a free port of 127.0.0.1, in a thread."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "the studio server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def call(url, path, body=None, raw=False, method=None):
    """(status, parsed JSON or bytes) of one request."""
    data = None if body is None else (body if raw else json.dumps(body).encode())
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={} if raw else {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, payload, kind = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "")
    return status, json.loads(payload) if "json" in kind else payload


def png(text_or_bytes):
    data = base64.b64decode(text_or_bytes) if isinstance(text_or_bytes, str) else text_or_bytes
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def project_over_http(url, image_bytes, steps=30, space="w"):
    from urllib.parse import quote

    status, answer = call(url, f"/api/project?space={quote(space)}&steps={steps}", image_bytes, raw=True)
    assert status == 200, answer
    for _ in range(1200):
        status, job = call(url, f"/api/project/{answer['id']}")
        if job["done"]:
            return job
        time.sleep(0.1)
    raise AssertionError("the projection did not finish")


@pytest.fixture(scope="module")
def style_run(tmp_path_factory):
    """A tiny StyleGAN2-ADA run folder (random weights: generator.keras; STUDIO_RUN names a trained one)."""
    if os.environ.get("STUDIO_RUN"):
        return Path(os.environ["STUDIO_RUN"])
    run = tmp_path_factory.mktemp("studio") / "run"
    run.mkdir()
    gan = create_gan("stylegan2-ada", RES, preset="tiny", seed=0, channel_max=16, z_dim=16, w_dim=16)
    gan.ema_generator.save(run / "generator.keras")
    return run


@pytest.fixture(scope="module")
def style_engine(style_run):
    return engines.open_source(str(style_run))


@pytest.fixture(scope="module")
def dcgan_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dcgan") / "generator.keras"
    create_gan("dcgan", RES, 16, width=8, seed=0).generator.save(path)
    return path


STATE = {"seed": 5, "psi": 0.8, "mix": {"on": True, "seed": 9, "crossover": "middle"},
         "directions": {"method": "sefa", "layers": "coarse", "k": 4, "amounts": {"0": 1.5, "2": -2}}}


def test_pictures_downloads_and_the_command_line_match_the_library(style_engine, tmp_path):
    generator = style_engine.generator
    found = edit.find_directions(generator, "sefa", k=4, layers="coarse")
    expected = edit.draw(generator, edit.Edit(seed=5, psi=0.8, mix_seed=9, crossover="middle", directions=found,
                                              amounts={0: 1.5, 2: -2.0}))
    with running(style_engine) as url:
        status, page = call(url, "/")
        assert status == 200 and b"studio.js" in page
        status, info = call(url, "/api/info")
        assert info["style"] and info["groups"]["coarse"] == [0, 1, 2] and info["disabled"] == {}
        status, answer = call(url, "/api/render", STATE)
        assert status == 200
        np.testing.assert_array_equal(png(answer["image"]), expected)
        command = answer["command"]
        assert command.startswith("keras-anime-gan explore ") and "--edit 0=1.5,2=-2" in command

        status, latent = call(url, "/api/download/latent", STATE)
        latent = np.load(io.BytesIO(latent))
        np.testing.assert_array_equal(edit.draw(generator, edit.Edit(latent=latent)), expected)
        status, data = call(url, "/api/download/png", STATE)
        np.testing.assert_array_equal(png(data), expected)
        status, gif = call(url, "/api/download/gif", {"state": STATE, "gif": "walk", "direction": 1})
        assert status == 200 and Image.open(io.BytesIO(gif)).n_frames == 22  # 12 out, 10 back
        plane = {**STATE, "plane_seeds": [1, 2, 3, 4]}
        status, gif = call(url, "/api/download/gif", {"state": plane, "gif": "plane"})
        assert status == 200 and Image.open(io.BytesIO(gif)).n_frames == 32
        status, grid = call(url, "/api/grid", {"seeds": [0, 1, 2], "psi": 1.0})
        # Drawn in a batch of the grid rather than alone: oneDNN may round one pixel of 3,072 the other way.
        assert np.abs(png(grid["images"][2]).astype(int) - edit.draw(generator, edit.Edit(seed=2))).max() <= 1
        status, values = call(url, "/api/directions", {"method": "sefa", "layers": "coarse", "k": 4})
        np.testing.assert_allclose(values["values"], found.values, rtol=1e-6)

        # A picture drawn from the plane: its command line reads the downloaded latent.
        status, answer = call(url, "/api/render", {**plane, "base": "plane", "plane": [0.3, 0.6]})
        assert "--latent studio-latent.npy" in answer["command"] and "--edit" not in answer["command"]

    # The command line the page shows redraws the picture (run here, in this process).
    from conftest import run_cli_in_process as run_cli

    words = command.split()[1:]
    words[words.index("--out") + 1] = str(tmp_path / "again.png")
    run_cli(*words)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "again-picture.png")), expected)


def test_bad_input_gets_one_message_and_the_server_keeps_serving(style_engine, dcgan_file, tmp_path):
    generator = style_engine.generator
    huge = io.BytesIO()
    Image.new("1", (8000, 6000)).save(huge, format="PNG")  # 48 megapixels in a small file
    with running(style_engine) as url:
        cases = [
            ("/api/project?steps=10", b"GIF89a but not really an image", 400, "not an image Pillow can identify"),
            ("/api/project?steps=10", huge.getvalue(), 400, "too many pixels"),
            ("/api/project?steps=10", b"\0" * (MAX_UPLOAD + 1), 413, "at most 16 MiB"),
            ("/api/project?steps=10", b"", 400, "no image uploaded"),
            ("/api/render", b"{not json", 400, "not JSON"),
        ]
        for path, body, status, message in cases:
            got, answer = call(url, path, body, raw=True)
            assert (got, message in answer["error"]) == (status, True), answer
            assert "\n" not in answer["error"]
        for state, message in [({"seed": -1}, "seed must be in"), ({"seed": 1, "psi": None}, "psi must be a finite"),
                               ({"noise": "loud"}, "noise mode must be one of"),
                               ({"mix": {"on": True, "seed": 1, "crossover": "fine"}}, "no fine style layers"),
                               ({"base": "projection", "projection": "p99"}, "that projection is gone"),
                               ({"base": "plane", "plane_seeds": [1]}, "needs 2 to 4 chosen seeds")]:
            got, answer = call(url, "/api/render", state)
            assert got == 400 and message in answer["error"], answer
        got, answer = call(url, "/api/render", {"seed": 3})
        assert got == 200
        np.testing.assert_array_equal(png(answer["image"]), edit.draw(generator, edit.Edit(seed=3)))

    dcgan = engines.open_source(str(dcgan_file))
    assert set(dcgan.info()["disabled"]) == {"cutoff", "noise", "mixing", "sefa"}
    with running(dcgan) as url:
        got, answer = call(url, "/api/render", {"seed": 1, "mix": {"on": True, "seed": 2}})
        assert got == 400 and answer["error"].startswith("style mixing needs a StyleGAN generator")
        got, answer = call(url, "/api/render", {"seed": 1, "psi": 0.5,
                                                "directions": {"method": "ganspace", "k": 3, "amounts": {"1": 2}}})
        assert got == 200
        found = edit.find_directions(dcgan.generator, "ganspace", k=3)
        np.testing.assert_array_equal(png(answer["image"]), edit.draw(
            dcgan.generator, edit.Edit(seed=1, psi=0.5, directions=found, amounts={1: 2.0})))


def test_projection_over_http_hands_its_latent_to_every_control(style_engine):
    generator = style_engine.generator
    face = io.BytesIO()
    Image.fromarray(edit.draw(generator, edit.Edit(seed=77, psi=0.7))).resize((100, 100)).save(face, format="PNG")
    with running(style_engine) as url:
        job = project_over_http(url, face.getvalue(), steps=40, space="w+")
        assert job["error"] is None and job["step"] == 40 and job["psnr"] > 15
        state = {"base": "projection", "projection": job["id"], "psi": 0.9,
                 "directions": {"method": "ganspace", "k": 3, "amounts": {"0": 1}}}
        got, answer = call(url, "/api/render", state)
        assert got == 200 and "--latent studio-latent.npy" in answer["command"]
        got, latent = call(url, "/api/download/latent", state)
        np.testing.assert_array_equal(png(answer["image"]),
                                      edit.draw(generator, edit.Edit(latent=np.load(io.BytesIO(latent)))))
        base = style_engine.projections[job["id"]]
        np.testing.assert_array_equal(png(job["preview"]), edit.draw(generator, edit.Edit(latent=base)))


def _export(tmp_path, generator_file):
    from keras_anime_gan.export import export_generator

    return export_generator(str(generator_file), str(tmp_path / "models"), "faces", max_images=64)


def test_saved_model_and_tf_serving_sources_draw_seeds_and_say_what_they_cannot(dcgan_file, tmp_path):
    import keras
    import tensorflow as tf

    version = _export(tmp_path, dcgan_file)
    generator = keras.models.load_model(dcgan_file)
    for source in (version, str(tmp_path / "models" / "faces")):  # a version, or the model's folder (newest)
        engine = engines.open_source(source)
        assert isinstance(engine, engines.SavedModelEngine) and engine.info()["insides"] is False
    assert {"directions", "projection", "mixing"} <= set(engine.disabled())
    with running(engine) as url:
        got, answer = call(url, "/api/render", {"seed": 4})
        np.testing.assert_array_equal(png(answer["image"]), edit.draw(generator, edit.Edit(seed=4)))
        got, answer = call(url, "/api/render", {"seed": 4, "psi": 0.5})  # the generate signature
        np.testing.assert_array_equal(png(answer["image"]), edit.draw(generator, edit.Edit(seed=4, psi=0.5)))
        got, answer = call(url, "/api/project?steps=5", b"anything", raw=True)
        assert got == 400 and "needs the networks' insides" in answer["error"]
        got, answer = call(url, "/api/render", {"seed": 2})
        assert got == 200

    # A SavedModel without the export's signature: one message, on the page's start and on the command line.
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.float32)])
    other = tmp_path / "other_model"
    tf.saved_model.save(module, str(other), signatures={"serving_default": module.double})
    with pytest.raises(UserError, match=r"has no serving_default signature taking `latent`.*serving_default\(x\)"):
        engines.open_source(str(other))
    from conftest import run_cli_in_process as run_cli

    result = run_cli("studio", other, "--port", str(_free_port()), check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "no serving_default" in result.stderr

    # TF Serving's REST API, answered by a stand-in server on 127.0.0.1 that runs the exported version
    # by TF Serving's JSON rules (test_export's emulation); then a URL where nothing answers.
    from conftest import rest_request_to_tensors, rest_tensors_to_response

    loaded = tf.saved_model.load(version)

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            def shapes(specs):
                return {key: {"tensor_shape": {"dim": [{"size": str(d or -1)} for d in spec.shape]}}
                        for key, spec in specs.items()}

            signatures = {name: {"inputs": shapes(fn.structured_input_signature[1]),
                                 "outputs": shapes(fn.structured_outputs)} for name, fn in loaded.signatures.items()}
            self._send({"metadata": {"signature_def": {"signature_def": signatures}}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            function = loaded.signatures[body.get("signature_name", "serving_default")]
            outputs = function(**rest_request_to_tensors(body, function))
            self._send(rest_tensors_to_response(outputs, "instances" in body))

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        rest = engines.open_source(f"http://127.0.0.1:{server.server_port}/v1/models/faces")
        assert isinstance(rest, engines.RestEngine) and rest.latent_dim == 16 and rest.resolution == RES
        image, _ = rest.render({"seed": 6})
        np.testing.assert_array_equal(image, edit.draw(generator, edit.Edit(seed=6)))
        image, _ = rest.render({"seed": 6, "psi": 0.5})
        np.testing.assert_array_equal(image, edit.draw(generator, edit.Edit(seed=6, psi=0.5)))
        image, _ = rest.render({"base": "plane", "plane_seeds": [1, 2], "plane": [0.0, 0.0]})
        np.testing.assert_array_equal(image, edit.draw(generator, edit.Edit(seed=1)))
    finally:
        server.shutdown()
    silent = f"http://127.0.0.1:{_free_port()}/v1/models/faces"
    with pytest.raises(UserError, match="does not answer"):
        engines.open_source(silent)
    result = run_cli("studio", silent, check=False)
    assert result.returncode == 2 and result.stderr.startswith("error: TF Serving at")
    assert "does not answer" in result.stderr and result.stderr.count("\n") == 1


def test_the_command_serves_until_interrupted_and_start_up_errors_are_one_line(monkeypatch, dcgan_file):
    import signal
    import subprocess
    import sys

    from keras_anime_gan import studio

    port = _free_port()
    command = [sys.executable, "-m", "keras_anime_gan", "studio", str(dcgan_file), "--port", str(port)]
    process = subprocess.Popen(command, cwd=SCRATCH, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    try:
        line = ""
        while "studio: http" not in line:
            line = process.stderr.readline()
            assert line or process.poll() is None, "the studio stopped before it served"
        assert f"http://127.0.0.1:{port}/" in line
        status, info = call(f"http://127.0.0.1:{port}", "/api/info")
        assert status == 200 and info["kind"] == "dcgan-family" and info["resolution"] == RES
        result = _cli("studio", str(dcgan_file), "--port", str(port))  # the same port again: one line
        assert result.returncode == 2 and result.stderr.startswith(f"error: cannot serve on 127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
    assert process.returncode in (0, 130)

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now fails, as when it is not installed
    with pytest.raises(UserError, match=r'pip install -e "\.\[studio\]"'):
        studio.serve(str(dcgan_file))


def _cli(*args):
    from conftest import run_cli_in_process as run_cli

    return run_cli(*args, check=False)


# ----------------------------------------------------------------------------- a real browser


def _browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e \".[test]\")")
    if not (os.path.isfile(CHROMIUM) or shutil.which("chromium")):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install -y chromium; .ci/run installs it)")
    return sync_playwright, CHROMIUM if os.path.isfile(CHROMIUM) else shutil.which("chromium")


def test_in_a_real_browser(style_engine, shared_faces_dir, tmp_path):
    sync_playwright, chromium = _browser()
    generator = style_engine.generator
    shots = Path(os.environ["STUDIO_SCREENSHOTS"]) if os.environ.get("STUDIO_SCREENSHOTS") else tmp_path
    face = shared_faces_dir / "19990.jpg"  # held out of the benchmark's training faces
    with running(style_engine) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1360, "height": 980})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']")

            def settled(previous):
                page.wait_for_function(f"Number(document.body.dataset.renders || 0) > {previous} "
                                       "&& document.body.dataset.busy === '0'")
                return int(page.evaluate("document.body.dataset.renders")), picture()

            def picture():
                return png(page.get_attribute("#picture", "src").split(",", 1)[1])

            count, first = settled(0)
            np.testing.assert_array_equal(first, edit.draw(generator, edit.Edit(seed=0)))
            assert page.locator(".thumb").count() == 16

            page.fill("#seed", "5")
            count, seeded = settled(count)
            assert not np.array_equal(seeded, first)
            np.testing.assert_array_equal(seeded, edit.draw(generator, edit.Edit(seed=5)))

            page.fill("#sliders input[data-index='0']", "2")
            count, moved = settled(count)
            found = edit.find_directions(generator, "sefa", k=8)
            assert not np.array_equal(moved, seeded)
            np.testing.assert_array_equal(moved, edit.draw(generator, edit.Edit(seed=5, directions=found,
                                                                               amounts={0: 2.0})))
            assert "--edit 0=2" in page.input_value("#command")
            page.screenshot(path=str(shots / "studio-directions.png"))

            steps = 300 if os.environ.get("STUDIO_SCREENSHOTS") else 60  # the docs' picture: a longer projection
            page.set_input_files("#upload", str(face))
            page.fill("#proj-steps", str(steps))
            page.click("#proj-go")
            page.wait_for_selector("body[data-projection='done']", timeout=120_000)
            count, projected = settled(count)
            latent = np.asarray(page.evaluate(
                "fetch('/api/download/latent', {method: 'POST', body: JSON.stringify(state)})"
                ".then((r) => r.arrayBuffer()).then((b) => Array.from(new Uint8Array(b)))"), np.uint8)
            latent = np.load(io.BytesIO(latent.tobytes()))
            np.testing.assert_array_equal(projected, edit.draw(generator, edit.Edit(latent=latent)))
            # The same projection as the library's (same image bytes, steps and space), still moved by the
            # direction slider set above: the projection became the base of every control.
            library = edit.project(generator, face.read_bytes(), steps=steps, space="w",
                                   discriminator=style_engine.discriminator())
            np.testing.assert_allclose(latent, edit.edited_latent(generator, edit.Edit(
                latent=library.latent, directions=found, amounts={0: 2.0})), atol=1e-4)
            preview = png(page.get_attribute("#proj-preview", "src").split(",", 1)[1])
            np.testing.assert_array_equal(preview, library.image)
            target = edit.target_image(face.read_bytes(), style_engine.resolution)
            assert edit.psnr(preview, target) > edit.psnr(first, target)
            assert page.locator("#message").is_hidden()
            page.screenshot(path=str(shots / "studio-projection.png"))
        finally:
            browser.close()
