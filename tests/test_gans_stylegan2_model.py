"""StyleGAN2-ADA as a model of the family: registry, optimizers, EMA schedule, one step with every phase."""

import numpy as np
import pytest
import tensorflow as tf

from keras_anime_gan import create_gan
from keras_anime_gan.errors import ConfigError


def _tiny(**options):
    return create_gan("stylegan2-ada", 8, preset="tiny", seed=0, channel_max=8, z_dim=8, w_dim=8, **options)


def test_optimizers_follow_the_lazy_regularisation_adjustment_and_the_ema_its_half_life():
    gan = _tiny()
    d, g = gan.default_optimizers()
    np.testing.assert_allclose(float(d.learning_rate), 0.0025 * 16 / 17, rtol=1e-6)
    np.testing.assert_allclose(float(g.learning_rate), 0.0025 * 4 / 5, rtol=1e-6)
    assert d.beta_1 == 0.0 and np.isclose(d.beta_2, 0.99 ** (16 / 17)) and np.isclose(g.beta_2, 0.99 ** (4 / 5))
    gan.__dict__["_global_batch"] = tf.constant(32)
    # ema_kimg auto = 32 * 10 / 32 = 10; the ramp-up limits the half-life to 5% of the images seen.
    assert float(gan.ema_decay_now(tf.constant(0.0))) == 0.0
    np.testing.assert_allclose(float(gan.ema_decay_now(tf.constant(100.0))), 0.5 ** (32 / (100 * 32 * 0.05)), rtol=1e-5)
    np.testing.assert_allclose(float(gan.ema_decay_now(tf.constant(1e6))), 0.5 ** (32 / 10000), rtol=1e-5)
    with pytest.raises(ConfigError, match="augment: must be one of ada, fixed, none"):
        _tiny(augment="always")
    with pytest.raises(ConfigError, match="cannot be built at resolution 24"):
        create_gan("stylegan2-ada", 24, preset="tiny")


def test_one_step_runs_every_phase_and_moves_ada_p():
    gan = _tiny(augment_p=0.1, ada_interval=1, ada_kimg=0.01, r1_gamma=1.0)
    gan.compile(jit_compile=False)
    real = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype(np.float32)
    logs = gan.fit(real, batch_size=4, epochs=1, verbose=0).history
    assert int(gan.phase_steps.numpy()) == 1
    assert int(gan.d_optimizer.iterations.numpy()) == 2 and int(gan.g_optimizer.iterations.numpy()) == 2  # main + reg
    assert logs["r1"][0] > 0 and logs["pl"][0] > 0 and np.isfinite(logs["d_loss"][0])
    assert float(gan.augmenter.p.numpy()) in (0.0, 0.5)  # 0.1 +- 4 images / 10 images, clipped
    assert float(gan.pl_mean.numpy()) > 0
    # Truncation at psi 0 is w_avg for every seed: the same face (constant noise at inference).
    faces = gan.generate(2, seed=3, truncation=0.0)
    np.testing.assert_array_equal(faces[0], faces[1])
    assert not np.array_equal(*gan.generate(2, seed=3))
