"""Client helpers for TensorFlow Serving's REST API (`POST /v1/models/NAME:predict`).

`predict_request` builds the JSON body for one of the exported signatures; `decode_predictions`
turns a response body back into uint8 images (N, H, W, 3). Only the standard library, NumPy and
Pillow are needed on the client. NaN or inf latents and truncation_psi are refused here as the
served model refuses them (and strict JSON cannot carry them).
"""

from __future__ import annotations

import base64
import io

import numpy as np

SIGNATURES = ("serving_default", "generate", "generate_png")


def predict_request(signature="serving_default", *, latents=None, num_images=None, seed=None,
                    truncation_psi=1.0, row_format=True) -> dict:
    """The request body for `signature`.

    serving_default takes `latents` (N, latent_dim) and uses the row ("instances") format unless
    row_format=False. generate / generate_png take scalars, which only the columnar ("inputs")
    format can carry.
    """
    if signature not in SIGNATURES:
        raise ValueError(f"signature must be one of {SIGNATURES}, got {signature!r}")
    if signature == "serving_default":
        if latents is None:
            raise ValueError("serving_default needs latents of shape (N, latent_dim)")
        _check_finite(latents, "latents")
        values = np.asarray(latents, np.float32).tolist()
        body = {"instances": values} if row_format else {"inputs": {"latent": values}}
    else:
        if num_images is None or seed is None:
            raise ValueError(f"{signature} needs num_images and seed")
        _check_finite(truncation_psi, "truncation_psi")
        body = {"inputs": {"num_images": int(num_images), "seed": int(seed), "truncation_psi": float(truncation_psi)}}
    body["signature_name"] = signature
    return body


def _check_finite(values, name) -> None:
    if not np.all(np.isfinite(np.asarray(values, np.float64))):
        raise ValueError(f"{name} must be finite numbers, not NaN or inf (the served model refuses them)")


def decode_predictions(response: dict) -> np.ndarray:
    """Images (N, H, W, 3) uint8 from a `:predict` response, in either format and for any of the
    three signatures (PNG strings arrive as {"b64": ...})."""
    if "predictions" in response:
        values = response["predictions"]
        if values and isinstance(values[0], dict):  # several outputs: one object per row
            values = [row.get("images", row.get("png_bytes")) for row in values]
    elif "outputs" in response:
        values = response["outputs"]
        if isinstance(values, dict):
            values = values.get("images", values.get("png_bytes"))
    else:
        raise ValueError(f"not a predict response (keys: {sorted(response)}); an error? {response.get('error')}")
    if values and isinstance(values[0], dict) and "b64" in values[0]:
        from PIL import Image

        return np.stack([np.asarray(Image.open(io.BytesIO(base64.b64decode(item["b64"]))).convert("RGB")) for item in values])
    return np.asarray(values, dtype=np.uint8)
