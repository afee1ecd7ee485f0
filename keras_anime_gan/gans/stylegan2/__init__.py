"""StyleGAN2-ADA: layers, networks and presets, ADA augmentation, and the model.

The training model, `StyleGAN2ADA` (its options and presets, and its objective: losses, lazy
regularisation, the ADA schedule), is in `model.py`, registered as "stylegan2-ada" (`create_gan`). NVIDIA's network
pickles map onto these networks in `keras_anime_gan.nvidia.weights`.
"""

from .augment import (AUGMENTATIONS, PIPELINES, AdaptiveAugment, ada_p_update, apply_color_matrix,
                      hue_rotation_matrix, luma_flip_matrix, saturation_matrix)
from .layers import (EqualizedConv2D, EqualizedDense, MinibatchStd, ModulatedConv2D, SynthesisLayer, ToRGB, bias_act,
                     conv2d_resample, downsample2d, minibatch_stddev, modulated_conv2d, normalize_2nd_moment,
                     setup_filter, upfirdn2d, upsample2d)
from .networks import (PRESETS, DiscriminatorBlock, DiscriminatorEpilogue, MappingNetwork, ResidualDiscriminator,
                       StyleGenerator, SynthesisBlock, SynthesisNetwork, channels_at, mix_styles, num_ws_for, preset,
                       trainable_count)

__all__ = [
    "AUGMENTATIONS", "PIPELINES", "PRESETS", "AdaptiveAugment", "DiscriminatorBlock", "DiscriminatorEpilogue",
    "EqualizedConv2D", "EqualizedDense", "MappingNetwork", "MinibatchStd", "ModulatedConv2D", "ResidualDiscriminator",
    "StyleGenerator", "SynthesisBlock", "SynthesisLayer", "SynthesisNetwork", "ToRGB", "ada_p_update",
    "apply_color_matrix", "bias_act", "channels_at", "conv2d_resample", "downsample2d", "hue_rotation_matrix",
    "luma_flip_matrix", "minibatch_stddev", "mix_styles", "modulated_conv2d", "normalize_2nd_moment", "num_ws_for",
    "preset", "saturation_matrix", "setup_filter",
    "trainable_count", "upfirdn2d", "upsample2d",
]
