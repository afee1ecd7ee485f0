"""The engines of served models, which see only z -> images: `SavedModelEngine` (an exported version
folder: its `serving_default`, latent -> images, and for psi its `generate` signature, seed and
psi -> images) and `RestEngine` (a TF Serving model URL, through the REST predict API;
`keras_anime_gan.rest_client` builds the requests and decodes the answers)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import numpy as np

from .. import edit
from ..errors import UserError
from ..sampling import latents_for_seeds
from .interface import INSIDES, Engine, checked_float

REST_TIMEOUT = 10.0  # seconds for one request to the model server


class _ZOnlyEngine(Engine):
    """Seeds, the seed grid, the plane (in z) and psi (seed pictures, the `generate` signature)."""

    what = "served model"

    def info(self):
        return {"kind": self.kind, "label": self.label, "resolution": self.resolution, "latent_dim": self.latent_dim,
                "style": False, "insides": False, "methods": [], "spaces": [], "disabled": self.disabled()}

    def disabled(self):
        why = INSIDES.format(what=self.what)
        found = {name: why for name in ("cutoff", "noise", "mixing", "directions", "projection", "sefa")}
        if not self.has_generate:
            found["psi"] = f"this {self.what} has no generate signature (seed, truncation_psi -> images)"
        return found

    def render(self, state):
        seeds, plane = self._plane_of(state)
        psi = checked_float(state.get("psi", 1.0), "psi")
        if state.get("base") == "projection":
            raise UserError("projection " + INSIDES.format(what=self.what))
        if seeds:
            if psi != 1.0:
                raise UserError(f"a {self.what} truncates seed pictures only (its generate signature): set psi to 1 "
                                "for the interpolation plane")
            z = edit.plane_latent(list(latents_for_seeds(seeds, self.latent_dim)), *plane, "z")
            return self.images_of(z[None])[0], z
        seed = self._seed_of(state)
        if psi != 1.0:
            if not self.has_generate:
                raise UserError(self.disabled()["psi"])
            return self.generate(seed, psi), None
        z = latents_for_seeds([seed], self.latent_dim)[0]
        return self.images_of(z[None])[0], z

    def grid(self, seeds, psi=1.0):
        if psi != 1.0 and self.has_generate:
            return np.stack([self.generate(seed, psi) for seed in seeds])
        return self.images_of(latents_for_seeds(seeds, self.latent_dim))


class SavedModelEngine(_ZOnlyEngine):
    kind = "savedmodel"
    what = "SavedModel"

    def __init__(self, path):
        import tensorflow as tf

        self.label = self.source = path
        try:
            self.model = tf.saved_model.load(path)
        except Exception as error:  # a damaged or foreign folder: TensorFlow raises many kinds
            first = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise UserError(f"{path} is not a SavedModel TensorFlow can load ({first[:200]})") from None
        signatures = dict(self.model.signatures)
        default = signatures.get("serving_default")
        inputs = default.structured_input_signature[1] if default is not None else {}
        outputs = default.structured_outputs if default is not None else {}
        if default is None or "latent" not in inputs or "images" not in outputs:
            have = ", ".join(f"{name}({', '.join(sig.structured_input_signature[1])})" for name, sig in
                             signatures.items()) or "none"
            raise UserError(f"{path} has no serving_default signature taking `latent` and returning `images` "
                            f"(as `keras-anime-gan export` writes); its signatures: {have}")
        self.latent_dim = int(inputs["latent"].shape[-1])
        self.resolution = int(outputs["images"].shape[1] or 0) or None
        self._default = default
        self._generate = signatures.get("generate")
        self.has_generate = self._generate is not None
        self.resolution = self.resolution or self.images_of(latents_for_seeds([0], self.latent_dim)).shape[1]

    def images_of(self, z):
        import tensorflow as tf

        try:
            return self._default(latent=tf.constant(np.asarray(z, np.float32)))["images"].numpy()
        except tf.errors.InvalidArgumentError as error:
            raise UserError(f"the SavedModel refused the request: {error.message.splitlines()[0]}") from None

    def generate(self, seed, psi):
        import tensorflow as tf

        return self._generate(num_images=tf.constant(1, tf.int32), seed=tf.constant(seed, tf.int64),
                              truncation_psi=tf.constant(psi, tf.float32))["images"].numpy()[0]


class RestEngine(_ZOnlyEngine):
    kind = "rest"
    what = "TF Serving REST endpoint"

    def __init__(self, url):
        url = url.rstrip("/")
        self.label = self.source = url
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or "/v1/models/" not in parsed.path:
            raise UserError(f"{url!r} is not a TF Serving model URL (http://HOST:8501/v1/models/NAME)")
        self.url = url
        metadata = self._request(url + "/metadata")
        try:
            signatures = metadata["metadata"]["signature_def"]["signature_def"]
            latent = signatures["serving_default"]["inputs"]["latent"]["tensor_shape"]["dim"]
            self.latent_dim = int(latent[-1]["size"])
            dims = signatures["serving_default"]["outputs"]["images"]["tensor_shape"]["dim"]
            self.resolution = int(dims[1]["size"])
        except (KeyError, IndexError, TypeError, ValueError):
            raise UserError(f"{url} serves no serving_default signature taking `latent` and returning `images` "
                            "(as `keras-anime-gan export` writes)") from None
        self.has_generate = "generate" in signatures

    def _request(self, url, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=REST_TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            try:
                message = json.loads(error.read()).get("error", "")
            except (ValueError, OSError):
                message = ""
            raise UserError(f"TF Serving at {self.url} answered {error.code} {error.reason}"
                            + (f": {message.splitlines()[0]}" if message else "")) from None
        except (urllib.error.URLError, OSError, TimeoutError) as error:
            reason = getattr(error, "reason", error)
            raise UserError(f"TF Serving at {self.url} does not answer ({reason}); is the model server running "
                            "there?") from None
        except ValueError:
            raise UserError(f"{url} answered something that is not JSON: not a TF Serving REST endpoint") from None

    def _predict(self, body):
        from ..rest_client import decode_predictions

        answer = self._request(self.url + ":predict", body)
        try:
            return decode_predictions(answer)
        except ValueError as error:
            raise UserError(f"TF Serving at {self.url}: {error}") from None

    def images_of(self, z):
        from ..rest_client import predict_request

        return self._predict(predict_request("serving_default", latents=np.asarray(z, np.float32)))

    def generate(self, seed, psi):
        from ..rest_client import predict_request

        return self._predict(predict_request("generate", num_images=1, seed=seed, truncation_psi=psi))[0]
