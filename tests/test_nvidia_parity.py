"""Our StyleGAN2-ADA networks with NVIDIA's weights compute NVIDIA's function.

The oracle: ../shared/nvidia-stylegan2-ada (tiny32 and small64, snapshots made with NVIDIA's own
code with every weight perturbed, G != G_ema, and their outputs on fixed inputs; see its README).
Tolerances are the issue's: mapping relative error <= 1e-4; images max |error| <= 2e-3 and mean
|error| <= 1e-4; discriminator logits relative error <= 1e-3. The errors measured on this CPU
(float32, TensorFlow 2.21 with oneDNN) are in each test's comment; NVIDIA's `ablation_maxdiff` (how
far an output moves when one ingredient is wrong) is 0.014 to 136 for the ingredients it lists.
"""

import copy
import json

import numpy as np
import pytest

from conftest import NVIDIA_FIXTURES
from keras_anime_gan.nvidia.configs import (SOURCE_ADA_NETWORKS, SOURCE_SG3_NETWORKS_STYLEGAN2,
                                             SOURCE_SG3_NETWORKS_STYLEGAN3, UnsupportedNetworkError, model_options,
                                             nvidia_init_kwargs)
from keras_anime_gan.nvidia.snapshots import check_networks, check_state_dicts, gan_from_nvidia, nvidia_state_shapes
from keras_anime_gan.nvidia.weights import (StateDictError, discriminator_entries, generator_entries,
                                             load_nvidia_state, nvidia_state_dicts)

FIXTURES = NVIDIA_FIXTURES
NAMES = ("tiny32", "small64")

MAPPING_REL = 1e-4
IMAGE_MAX_ABS, IMAGE_MEAN_ABS = 2e-3, 1e-4
LOGITS_REL = 1e-3


def _fixture(name):
    pickle, outputs = FIXTURES / f"{name}.pkl", FIXTURES / f"{name}.npz"
    if not (pickle.is_file() and outputs.is_file()):
        pytest.skip(f"NVIDIA StyleGAN2-ADA fixtures not found at {FIXTURES} (need {name}.pkl and {name}.npz; set "
                    f"NVIDIA_STYLEGAN2_ADA_DIR to the nvidia-stylegan2-ada folder)")
    from keras_anime_gan.nvidia.safe_pickle import read_snapshot

    return read_snapshot(pickle), dict(np.load(outputs)), json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture(scope="module", params=NAMES)
def imported(request):
    snapshot, reference, description = _fixture(request.param)
    resolution, options, gan = gan_from_nvidia(snapshot.networks, seed=0)
    return dict(name=request.param, snapshot=snapshot, reference=reference, description=description,
                resolution=resolution, options=options, gan=gan, ema=gan.ema_generator)


def _errors(ours, theirs):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape
    difference = np.abs(ours - theirs)
    return dict(max_abs=difference.max(), mean_abs=difference.mean(),
                rel=np.linalg.norm(ours - theirs) / max(np.linalg.norm(theirs), 1e-30))


def _nhwc(images):
    return np.transpose(images, (0, 2, 3, 1))


# ----------------------------------------------------------------------------- configuration


def test_the_import_rebuilds_nvidias_shapes(imported):
    """The options rebuild networks of NVIDIA's shape: the parameter counts of the fixture's JSON, and
    the options (all network values explicit) give the same networks through `create_gan`."""
    gan, description = imported["gan"], imported["description"]
    counts = description["param_counts"]
    g_params = sum(int(np.prod(v.shape)) for v in gan.generator.trainable_weights)
    d_params = sum(int(np.prod(v.shape)) for v in gan.discriminator.trainable_weights)
    assert (g_params, d_params) == (counts["G"]["parameters"], counts["D"]["parameters"])
    effective = description["config"]
    options = imported["options"]
    assert imported["resolution"] == effective["G"]["img_resolution"]
    assert (options["z_dim"], options["w_dim"]) == (effective["G"]["z_dim"], effective["G"]["w_dim"])
    assert options["mapping_layers"] == effective["G"]["mapping_kwargs"]["num_layers"]
    assert options["conv_clamp"] == (effective["G"]["synthesis_kwargs"]["conv_clamp"] or 0)
    assert options["reduced_precision_res"] == effective["G"]["synthesis_kwargs"]["num_fp16_res"]
    assert options["mbstd_group"] == effective["D"]["epilogue_kwargs"]["mbstd_group_size"]
    blocks = {str(b.resolution): b for b in gan.generator.synthesis_network.blocks}
    for resolution, block in effective["G"]["blocks"].items():
        assert (blocks[resolution].in_channels, blocks[resolution].out_channels) == (block["in_channels"],
                                                                                     block["out_channels"])
    # ... and back: NVIDIA constructor arguments for our networks map to the same options.
    kwargs = nvidia_init_kwargs(gan.generator, gan.discriminator)
    assert model_options(kwargs["G"], kwargs["D"]) == (imported["resolution"], options)


# ----------------------------------------------------------------------------- parity


def test_mapping_equals_nvidias(imported):
    """Measured (relative error): tiny32 ws 1.6e-7, ws_psi07 1.7e-7, ws_psi05_cutoff 1.6e-7, w_avg 0;
    small64 ws 3.9e-7, ws_psi07 3.9e-7, ws_psi05_cutoff 3.9e-7, w_avg 0. NVIDIA's ablation: ignoring the
    mapping bias lr multiplier moves ws by 44 (tiny32) / 136 (small64)."""
    ema, reference = imported["ema"], imported["reference"]
    z = reference["z"]
    outputs = {"ws": ema.mapping(z), "ws_psi07": ema.mapping(z, truncation_psi=0.7),
               "ws_psi05_cutoff": ema.mapping(z, truncation_psi=0.5, truncation_cutoff=4), "w_avg": ema.w_avg}
    for key, value in outputs.items():
        errors = _errors(np.asarray(value), reference[key])
        assert errors["rel"] <= MAPPING_REL, (imported["name"], key, errors)


def test_synthesis_equals_nvidias(imported):
    """Measured (max |error|, mean |error|): tiny32 img 5.7e-6 / 7.1e-7, img_psi07 6.9e-6 / 6.5e-7,
    img_psi05_cutoff 6.0e-6 / 6.1e-7, img_synth 4.8e-6 / 6.2e-7, img_G 6.2e-6 / 6.9e-7; small64 img
    1.8e-5 / 2.0e-6, img_psi07 1.5e-5 / 1.8e-6, img_psi05_cutoff 1.3e-5 / 1.6e-6, img_synth 1.3e-5 /
    1.6e-6, img_G 2.7e-5 / 2.1e-6 (images O(10)). NVIDIA's ablations move img by 0.026 (conv_clamp
    ignored, small64) to 7.4 (truncation cutoff ignored)."""
    gan, ema, reference = imported["gan"], imported["ema"], imported["reference"]
    z = reference["z"]
    outputs = {
        "img": ema(z),  # not training: constant noise, the buffers saved with the weights
        "img_psi07": ema.truncated(z, 0.7),
        "img_psi05_cutoff": ema.synthesis(reference["ws_psi05_cutoff"], noise_mode="const"),
        "img_synth": ema.synthesis(reference["ws"], noise_mode="const"),
        "img_G": gan.generator(z),
    }
    for key, value in outputs.items():
        errors = _errors(np.asarray(value), _nhwc(reference[key]))
        assert errors["max_abs"] <= IMAGE_MAX_ABS and errors["mean_abs"] <= IMAGE_MEAN_ABS, (
            imported["name"], key, errors)


def test_discriminator_equals_nvidias(imported):
    """Measured (relative error): tiny32 d_logits 1.2e-6, d_logits_real 1.3e-6; small64 d_logits
    2.6e-6, d_logits_real 2.4e-6. NVIDIA's ablations: the minibatch std over the whole batch moves
    d_logits by 0.094 / 0.159, conv_clamp ignored by 0.014 (small64); our own: D's 4x4 dense layer read
    without the (c, h, w) -> (h, w, c) permutation 1.0 / 6.4."""
    discriminator, reference = imported["gan"].discriminator, imported["reference"]
    for key, images in (("d_logits", reference["img"]), ("d_logits_real", reference["x"])):
        errors = _errors(np.asarray(discriminator(_nhwc(images))), reference[key])
        assert errors["rel"] <= LOGITS_REL, (imported["name"], key, errors)


def test_export_gives_back_nvidias_state_dicts_exactly(imported):
    """Import, then `nvidia_state_dicts`: every array of G, D and G_ema (buffers included: w_avg,
    every noise_const and resample_filter) equals the snapshot's own state_dict(), key order too."""
    exported = nvidia_state_dicts(imported["gan"])
    for name in ("G", "D", "G_ema"):
        original = imported["snapshot"].networks[name].state_dict()
        assert list(exported[name]) == list(original), name
        for key, value in original.items():
            ours = exported[name][key]
            assert ours.dtype == np.float32 and ours.shape == value.shape, (name, key)
            np.testing.assert_array_equal(ours, value, err_msg=f"{name}.{key}")


def test_const_noise_is_the_snapshots_and_survives_saving(imported, tmp_path):
    """noise_mode const uses each layer's noise_const buffer from the snapshot; generator.keras keeps it."""
    import keras

    ema, reference = imported["ema"], imported["reference"]
    state = imported["snapshot"].networks["G_ema"].state_dict()
    block = ema.synthesis_network.blocks[-1]
    np.testing.assert_array_equal(block.conv1.noise_const.numpy(),
                                  state[f"synthesis.b{block.resolution}.conv1.noise_const"])
    ema.save(tmp_path / "generator.keras")
    loaded = keras.models.load_model(tmp_path / "generator.keras")
    errors = _errors(np.asarray(loaded(reference["z"])), _nhwc(reference["img"]))
    assert errors["max_abs"] <= IMAGE_MAX_ABS and errors["mean_abs"] <= IMAGE_MEAN_ABS, errors


# ----------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def tiny_records():
    snapshot, _, _ = _fixture("tiny32")
    return snapshot.networks


def _edited(records, name, edit):
    records = {key: copy.copy(record) for key, record in records.items()}
    record = records[name]
    record.init_kwargs = copy.deepcopy(record.init_kwargs)
    edit(record.init_kwargs)
    if name == "G":  # G_ema is built like G
        records["G_ema"].init_kwargs = copy.deepcopy(record.init_kwargs)
    return records


def _options(records):
    check_networks(records)
    return model_options(records["G"].init_kwargs, records["D"].init_kwargs)


REFUSALS = [
    ("G", lambda k: k.update(c_dim=10), r"generator c_dim=10 is not supported \(supported: 0\)"),
    ("D", lambda k: k.update(c_dim=10), r"discriminator c_dim=10 is not supported \(supported: 0\)"),
    ("G", lambda k: k["synthesis_kwargs"].update(architecture="resnet"),
     r"architecture='resnet' is not supported \(supported: 'skip'\)"),
    ("G", lambda k: k["synthesis_kwargs"].update(architecture="orig"), r"architecture='orig' is not supported"),
    ("D", lambda k: k.update(architecture="skip"), r"architecture='skip' is not supported \(supported: 'resnet'\)"),
    ("G", lambda k: k["synthesis_kwargs"].update(resample_filter=[1, 2, 1]),
     r"resample_filter=\[1, 2, 1\] is not supported \(supported: the standard \[1, 3, 3, 1\]\)"),
    ("D", lambda k: k.update(block_kwargs={"resample_filter": [1, 1]}), r"resample_filter=\[1, 1\] is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(kernel_size=5), r"kernel_size=5 is not supported \(supported: 3\)"),
    ("G", lambda k: k["synthesis_kwargs"].update(activation="relu"), r"activation='relu' is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update(activation="linear"), r"mapping network activation='linear'"),
    ("D", lambda k: k.update(block_kwargs={"activation": "relu"}), r"activation='relu' is not supported"),
    ("D", lambda k: k["epilogue_kwargs"].update(activation="relu"), r"epilogue activation='relu'"),
    ("G", lambda k: k.update(img_channels=1), r"generator img_channels=1 is not supported \(supported: 3\)"),
    ("D", lambda k: k.update(img_channels=4), r"discriminator img_channels=4 is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update(layer_features=32),
     r"layer_features=32 is not supported \(supported: None, i.e. w_dim = 64\)"),
    ("G", lambda k: k["mapping_kwargs"].update(w_avg_beta=None), r"w_avg_beta=None"),
    ("G", lambda k: k["synthesis_kwargs"].update(use_noise=False), r"use_noise=False is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(channels_last=True),
     r"synthesis_kwargs has arguments .* not take or we do not know: channels_last"),
    ("D", lambda k: k["epilogue_kwargs"].update(mbstd_group_size=None), r"mbstd_group_size=None is not supported"),
    ("D", lambda k: k["epilogue_kwargs"].update(mbstd_num_channels=0), r"mbstd_num_channels=0 is not supported"),
    ("D", lambda k: k.update(block_kwargs={"freeze_layers": 2}), r"freeze_layers=2 is not supported"),
    ("D", lambda k: k.update(conv_clamp=256), r"differ in conv_clamp \(G None, D 256.0\)"),
    ("G", lambda k: k.update(img_resolution=48), r"img_resolution=48 is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(num_fp16_res=-1), r"num_fp16_res=-1 is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update(lr_multiplier=0), r"lr_multiplier=0 is not supported"),
    ("G", lambda k: k.update(z_dim=None), r"z_dim=None is not supported"),
]


@pytest.mark.parametrize("name,edit,message", REFUSALS, ids=[r[2][:40] for r in REFUSALS])
def test_what_we_cannot_compute_is_refused_by_name(tiny_records, name, edit, message):
    assert _options(tiny_records)[0] == 32  # the fixture itself imports
    with pytest.raises(UnsupportedNetworkError, match=message):
        _options(_edited(tiny_records, name, edit))


def test_label_embedding_size_without_labels_is_accepted(tiny_records):
    """embed_features sizes only the label embedding, which NVIDIA leaves out when c_dim is 0."""
    records = _edited(tiny_records, "G", lambda k: k["mapping_kwargs"].update(embed_features=16))
    assert _options(records) == _options(tiny_records)


def test_stylegan3_and_other_classes_are_refused(tiny_records):
    from keras_anime_gan.nvidia import safe_pickle

    # The labels the reader gives are the ones the mapper reads.
    assert (SOURCE_ADA_NETWORKS, SOURCE_SG3_NETWORKS_STYLEGAN2, SOURCE_SG3_NETWORKS_STYLEGAN3) == (
        safe_pickle.SOURCE_ADA_NETWORKS, safe_pickle.SOURCE_SG3_NETWORKS_STYLEGAN2,
        safe_pickle.SOURCE_SG3_NETWORKS_STYLEGAN3)
    assert tiny_records["G"].source == SOURCE_ADA_NETWORKS
    stylegan3 = copy.copy(tiny_records["G"])
    stylegan3.source = SOURCE_SG3_NETWORKS_STYLEGAN3
    with pytest.raises(UnsupportedNetworkError, match="StyleGAN3 \\(alias-free\\) network"):
        check_networks({**tiny_records, "G": stylegan3})
    unknown = copy.copy(tiny_records["G_ema"])
    unknown.source = "unknown"
    with pytest.raises(UnsupportedNetworkError, match="not one of NVIDIA's StyleGAN2 network files"):
        check_networks({**tiny_records, "G_ema": unknown})
    other = copy.copy(tiny_records["D"])
    other.class_name = "Generator"
    with pytest.raises(UnsupportedNetworkError, match="expected StyleGAN2-ADA's Discriminator class, the file has "
                                                      "'Generator'"):
        check_networks({**tiny_records, "D": other})
    with pytest.raises(UnsupportedNetworkError, match="no G_ema network"):
        check_networks({"G": tiny_records["G"], "D": tiny_records["D"]})
    unlike = _edited(tiny_records, "G", lambda k: None)
    unlike["G_ema"].init_kwargs = {**unlike["G_ema"].init_kwargs, "w_dim": 32}
    with pytest.raises(UnsupportedNetworkError, match="G_ema is not built like G"):
        check_networks(unlike)


def test_state_dicts_that_do_not_fit_are_refused_before_anything_is_set(imported):
    gan, snapshot = imported["gan"], imported["snapshot"]
    states = {name: snapshot.networks[name].state_dict() for name in ("G", "D", "G_ema")}
    before = [v.numpy().copy() for v in gan.generator.variables]
    bad = dict(states["G"])
    del bad["synthesis.b4.conv1.noise_const"]
    bad["synthesis.b4.extra"] = np.zeros(3, np.float32)
    bad["mapping.fc0.weight"] = bad["mapping.fc0.weight"].T[:, :-1]
    with pytest.raises(StateDictError, match=r"missing keys: synthesis.b4.conv1.noise_const; unexpected keys: "
                                             r"synthesis.b4.extra; mapping.fc0.weight has shape"):
        load_nvidia_state(gan, {**states, "G": bad})
    filtered = dict(states["D"])
    filtered["b4.conv.resample_filter"] = np.full((4, 4), 1 / 16, np.float32)
    with pytest.raises(UnsupportedNetworkError, match="b4.conv.resample_filter is not the standard"):
        load_nvidia_state(gan, {**states, "D": filtered})
    with pytest.raises(StateDictError, match="no G_ema state dict"):
        load_nvidia_state(gan, {"G": states["G"], "D": states["D"]})
    for variable, value in zip(gan.generator.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value)


# ----------------------------------------------------------------------------- without the fixtures


def _tiny_gan(seed, **options):
    from keras_anime_gan import create_gan

    return create_gan("stylegan2-ada", 8, seed=seed, preset="tiny", channel_max=8, z_dim=8, w_dim=8, mbstd_group=2,
                      **options)


def test_our_weights_go_through_nvidias_state_dicts_and_back():
    """Ours -> NVIDIA state dicts -> a fresh model: every variable of G, D and the EMA (G_ema), buffers
    included; the keys are NVIDIA's, with the constant resampling filters it keeps."""
    source = _tiny_gan(0, conv_clamp=0)
    rng = np.random.default_rng(1)
    for variable in source.generator.variables + source.discriminator.variables + source.ema_generator.variables:
        variable.assign(rng.normal(size=variable.shape).astype(np.float32))  # G_ema differs from G
    states = nvidia_state_dicts(source)
    assert list(states["G"]) == list(states["G_ema"])
    assert [key for key in states["G"] if "noise_const" in key] == [
        "synthesis.b4.conv1.noise_const", "synthesis.b8.conv0.noise_const", "synthesis.b8.conv1.noise_const"]
    assert list(states["G"])[:4] == ["synthesis.b4.const", "synthesis.b4.resample_filter",
                                     "synthesis.b4.conv1.weight", "synthesis.b4.conv1.noise_strength"]
    assert list(states["D"])[-4:] == ["b4.fc.weight", "b4.fc.bias", "b4.out.weight", "b4.out.bias"]
    assert states["G"]["synthesis.b8.conv0.weight"].shape == (8, 8, 3, 3) and states["G"]["mapping.w_avg"].shape == (8,)
    assert states["D"]["b4.fc.weight"].shape == (8, 8 * 16) and states["D"]["b4.conv.weight"].shape == (8, 9, 3, 3)
    np.testing.assert_array_equal(states["D"]["b8.skip.resample_filter"],
                                  np.outer([1, 3, 3, 1], [1, 3, 3, 1]).astype(np.float32) / 64)
    target = _tiny_gan(5, conv_clamp=0)
    load_nvidia_state(target, states)
    for mine, theirs in ((target.generator.variables, source.generator.variables),
                         (target.discriminator.variables, source.discriminator.variables),
                         (target.ema_generator.variables, source.ema_generator.variables)):
        for a, b in zip(mine, theirs):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    z = rng.normal(size=(2, 8)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(target.ema_generator(z)), np.asarray(source.ema_generator(z)))


def test_nvidia_constructor_arguments_of_ours_map_back_to_the_same_options():
    from keras_anime_gan.gans.registry import model_options as registry_options
    from keras_anime_gan.gans.stylegan2.model import StyleGAN2ADA

    for extra in ({}, {"conv_clamp": 0, "reduced_precision_res": 0, "mbstd_channels": 2, "mapping_lr": 0.1}):
        gan = _tiny_gan(0, **extra)
        kwargs = nvidia_init_kwargs(gan.generator, gan.discriminator)
        assert kwargs["G"]["synthesis_kwargs"]["conv_clamp"] == (None if extra else 256)
        resolution, options = model_options(kwargs["G"], kwargs["D"], preset="tiny")
        resolved = StyleGAN2ADA.resolve_options(8, registry_options("stylegan2-ada", {
            "preset": "tiny", "channel_max": 8, "z_dim": 8, "w_dim": 8, "mbstd_group": 2, **extra}))
        assert resolution == 8
        assert options == {name: getattr(resolved, name) for name in options}


def test_stylegan3_repositorys_stylegan2_networks_are_read_in_their_own_layout(tiny_records):
    """stylegan3's training/networks_stylegan2.py: the same layers and weights, its synthesis arguments
    at the top level of Generator(...) and other defaults (w_avg_beta 0.998, 4 float16 resolutions,
    conv_clamp 256)."""
    g, d = tiny_records["G"].init_kwargs, tiny_records["D"].init_kwargs
    flat = {key: value for key, value in g.items() if key != "synthesis_kwargs"}
    flat.update(g["synthesis_kwargs"], fused_modconv_default="inference_only")
    port = dict(generator_source=SOURCE_SG3_NETWORKS_STYLEGAN2, discriminator_source=SOURCE_SG3_NETWORKS_STYLEGAN2)
    mapping = {**g["mapping_kwargs"], "w_avg_beta": 0.995}  # stated: it is not stylegan3's default
    stated = model_options({**flat, "mapping_kwargs": mapping}, d, **port)
    assert stated == model_options(g, d)
    defaults = {key: value for key, value in flat.items() if key not in ("num_fp16_res", "conv_clamp")}
    _, options = model_options(defaults, {k: v for k, v in d.items() if k not in ("num_fp16_res", "conv_clamp")},
                               **port)
    assert (options["w_avg_beta"], options["reduced_precision_res"], options["conv_clamp"]) == (0.998, 4, 256)


# ----------------------------------------------------------------------------- hostile options (issue 33)


HOSTILE_OPTIONS = [
    ("G", lambda k: k.update(z_dim=np.array(64)), r"generator z_dim=<a int64 array of shape \(\)> is not supported"),
    ("G", lambda k: k.update(w_dim=8192),
     r"generator w_dim=8192 is not supported \(supported: a positive integer up to 4,096\)"),
    ("G", lambda k: k.update(w_dim=True), r"generator w_dim=True is not supported"),
    ("G", lambda k: k.update(mapping_kwargs=5), r"the generator's mapping_kwargs is 5, not a dict of named arguments"),
    ("G", lambda k: k.update(synthesis_kwargs=[1]), r"synthesis_kwargs is \[1\], not a dict of named arguments"),
    ("G", lambda k: k["synthesis_kwargs"].update(resample_filter="1331"), r"resample_filter='1331' is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(resample_filter=np.ones(4)), r"resample_filter=<a float64 array"),
    ("G", lambda k: k.update(img_resolution=[32]), r"img_resolution=\[32\] is not supported"),
    ("G", lambda k: k.update(img_resolution=2**20),
     r"img_resolution=1048576 is not supported \(a power of two >= 4, up to 4096\)"),
    ("G", lambda k: k["synthesis_kwargs"].update(conv_clamp=float("nan")), r"conv_clamp=nan is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(conv_clamp=float("inf")), r"conv_clamp=inf is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update(num_layers=10**6), r"num_layers=1000000 is not supported \(supported: 1 "
                                                                  r"or more, up to 64\)"),
    ("G", lambda k: k["mapping_kwargs"].update(lr_multiplier=float("nan")), r"lr_multiplier=nan is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update(w_avg_beta=float("nan")), r"w_avg_beta=nan is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(channel_base=2**40), r"channel_base=1099511627776 is not supported"),
    ("G", lambda k: k["synthesis_kwargs"].update(channel_base=16), r"channel_base=16 leaves its 32 px layers no "
                                                                   r"channels"),
    ("G", lambda k: k.update(c_dim=np.zeros(3)), r"c_dim=<a float64 array of shape \(3,\)> is not supported"),
    ("G", lambda k: k["mapping_kwargs"].update({7: 1}), r"mapping_kwargs is \{'num_layers': 2, 7: 1\}, not a dict of "
                                                        r"named arguments"),
    ("D", lambda k: k["epilogue_kwargs"].update(mbstd_group_size=10**9),
     r"mbstd_group_size=1000000000 is not supported"),
    ("D", lambda k: k.update(channel_max=2**30), r"discriminator channel_max=1073741824 is not supported"),
    ("D", lambda k: k.update(block_kwargs="x"), r"block_kwargs is 'x', not a dict of named arguments"),
]


@pytest.mark.parametrize("name,edit,message", HOSTILE_OPTIONS, ids=[r[2][:40] for r in HOSTILE_OPTIONS])
def test_options_of_the_wrong_type_or_beyond_the_bounds_are_one_line_refusals(tiny_records, name, edit, message):
    with pytest.raises(UnsupportedNetworkError, match=message) as refused:
        _options(_edited(tiny_records, name, edit))
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 400


@pytest.mark.parametrize("resolution, options", [
    (8, dict(preset="tiny", channel_max=8, z_dim=8, w_dim=8, mbstd_group=2)),
    (16, dict(preset="tiny", channel_base=64, channel_max=16, z_dim=12, w_dim=10, mapping_layers=3, mbstd_channels=2)),
])
def test_the_state_dict_shapes_known_before_building_are_those_of_the_built_networks(resolution, options):
    from keras_anime_gan import create_gan

    gan = create_gan("stylegan2-ada", resolution, seed=0, **options)
    g, d = gan.generator, gan.discriminator
    expected = nvidia_state_shapes(resolution, dict(
        z_dim=g.z_dim, w_dim=g.w_dim, channel_base=g.channel_base, channel_max=g.channel_max,
        mapping_layers=g.mapping_layers, mbstd_channels=d.mbstd_channels))
    # the same keys, in NVIDIA's order, with the same shapes
    assert list(expected["G"].items()) == [(entry.key, entry.nvidia_shape()) for entry in generator_entries(g)]
    assert list(expected["D"].items()) == [(entry.key, entry.nvidia_shape()) for entry in discriminator_entries(d)]


def test_the_fixtures_state_dicts_are_checked_whole_before_any_network_is_built(tiny_records, monkeypatch):
    from keras_anime_gan.gans import registry

    resolution, options = _options(tiny_records)
    expected = nvidia_state_shapes(resolution, options)
    for name, kind in (("G", "G"), ("G_ema", "G"), ("D", "D")):
        state = tiny_records[name].state_dict()
        assert {key: tuple(value.shape) for key, value in state.items()} == dict(expected[kind])
    check_state_dicts(tiny_records, resolution, options)  # the fixture passes

    def never(*args, **kwargs):
        raise AssertionError("a network was built")

    monkeypatch.setattr(registry, "create_gan", never)

    class Edited:
        def __init__(self, record, key, value):
            self.record, self.key, self.value = record, key, value
            self.class_name, self.source = record.class_name, record.source
            self.init_args, self.init_kwargs = record.init_args, record.init_kwargs

        def state_dict(self):
            return {**self.record.state_dict(), self.key: self.value}

    w_avg = tiny_records["G_ema"].state_dict()["mapping.w_avg"].copy()
    w_avg[3] = np.inf
    for name, key, value, message in [
        ("G_ema", "mapping.w_avg", w_avg, r"the generator moving average \(G_ema\)'s state dict does not fit: "
                                          r"mapping.w_avg holds NaN or inf \(1 of 64 values\)"),
        ("D", "b4.out.bias", np.array([np.nan], np.float32), r"discriminator's state dict does not fit: b4.out.bias "
                                                             r"holds NaN or inf"),
        ("G", "mapping.fc0.weight", np.zeros((64, 8192), np.float32), r"mapping.fc0.weight has shape \[64, 8192\], "
                                                                      r"expected \[64, 64\]"),
        ("G", "mapping.fc9.weight", np.zeros(1, np.float32), r"unexpected keys: mapping.fc9.weight"),
        ("D", "b4.fc.weight", tiny_records["D"].state_dict()["b4.conv.weight"][:1].reshape(1, -1)[:, :0].reshape(64, 0),
         r"b4.fc.weight has shape \[64, 0\], expected \[64, 1024\]"),
    ]:
        networks = {**tiny_records, name: Edited(tiny_records[name], key, value)}
        with pytest.raises(StateDictError, match=message):
            gan_from_nvidia(networks)
    shared = tiny_records["G"].state_dict()["mapping.fc1.weight"]
    networks = {**tiny_records, "G_ema": Edited(tiny_records["G_ema"], "mapping.fc1.weight", shared)}
    with pytest.raises(StateDictError, match=r"G mapping.fc1.weight and G_ema mapping.fc1.weight share their data|"
                                             r"G_ema mapping.fc1.weight and G mapping.fc1.weight share their data"):
        gan_from_nvidia(networks)
