"""`Conv2DTranspose`: Keras's layer, with a faster kernel gradient in bfloat16 where TensorFlow's is slow.

On CPUs with native bfloat16 (avx512_bf16), oneDNN's filter gradient of a transposed convolution
whose input is only a few pixels across (the generator's first upsampling, 4x4 -> 8x8 with 512
channels) runs slower in bfloat16 than in float32, and it alone cancels most of bfloat16's gain in
the generator step (docs/benchmarks.md, precision). The same
gradient, written as one matrix product over the output gradient's patches, is a single large
bfloat16 GEMM. It is the same sum, so only rounding differs; every other case keeps Keras's path.
"""

from __future__ import annotations

import keras
import tensorflow as tf

# The patch GEMM wins when the layer's input has at most this many pixels (docs/benchmarks.md);
# larger inputs keep TensorFlow's kernel.
PATCH_GRADIENT_MAX_PIXELS = 36


def conv2d_transpose_patch_gradient(inputs, kernel, output_shape, stride):
    """tf.nn.conv2d_transpose(inputs, kernel, output_shape, stride, "SAME") whose kernel gradient
    is patches(dy)^T @ inputs: dy's (kh, kw, out) patches at the stride, against each input pixel."""
    height, width, out_channels, in_channels = kernel.shape
    strides = [1, stride, stride, 1]

    @tf.custom_gradient
    def forward(x, w):
        y = tf.nn.conv2d_transpose(x, w, output_shape, strides, "SAME")

        def gradient(dy):
            dx = tf.nn.conv2d(dy, w, strides, "SAME")  # what TensorFlow's own gradient does
            patches = tf.image.extract_patches(dy, [1, height, width, 1], strides, [1, 1, 1, 1], "SAME")
            dw = tf.matmul(tf.reshape(patches, [-1, height * width * out_channels]),
                           tf.reshape(x, [-1, in_channels]), transpose_a=True)
            return dx, tf.reshape(dw, kernel.shape)

        return y, gradient

    return forward(inputs, kernel)


@keras.saving.register_keras_serializable(package="keras_anime_gan")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose; in bfloat16, a small input's kernel gradient goes through
    `conv2d_transpose_patch_gradient`. Same variables and config as Keras's layer."""

    def _uses_patch_gradient(self, inputs):
        return (self.compute_dtype == "bfloat16" and keras.backend.backend() == "tensorflow"
                and self.padding == "same" and self.data_format == "channels_last"
                and self.output_padding is None and self.dilation_rate == (1, 1)
                and self.strides[0] == self.strides[1]
                and inputs.shape[1] is not None and inputs.shape[2] is not None
                and inputs.shape[1] * inputs.shape[2] <= PATCH_GRADIENT_MAX_PIXELS)

    def call(self, inputs):
        if not self._uses_patch_gradient(inputs):
            return super().call(inputs)
        stride = self.strides[0]
        shape = tf.shape(inputs)
        output_shape = tf.stack([shape[0], inputs.shape[1] * stride, inputs.shape[2] * stride, self.filters])
        outputs = conv2d_transpose_patch_gradient(inputs, tf.convert_to_tensor(self.kernel), output_shape, stride)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, tf.convert_to_tensor(self.bias))
        return self.activation(outputs) if self.activation is not None else outputs
