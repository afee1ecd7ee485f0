"""TF Serving's files beside an export: models.config read and written through the ModelServerConfig
proto (hand edits and comments kept). The warmup requests and batching parameters are checked by
replaying and serving them in test_export_loaders.py."""

from keras_anime_gan.serving_config import register_model


def _parse_models_config(path):
    """models.config parsed with TF Serving's own ModelServerConfig, as the model server reads it."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    return text_format.Parse(path.read_text(), model_server_config_pb2.ModelServerConfig())


def test_models_config_parses_as_the_text_proto_and_lists_each_model_once(tmp_path):
    base = tmp_path / "models"
    base.mkdir()
    register_model(str(base), "faces")
    written = (base / "models.config").read_text()
    register_model(str(base), "faces")
    assert (base / "models.config").read_text() == written  # listed already: the file is not touched
    register_model(str(base), "portraits", serving_base_path="/models")
    config = _parse_models_config(base / "models.config")
    entries = [(c.name, c.base_path, c.model_platform) for c in config.model_config_list.config]
    assert entries == [("faces", str(base / "faces"), "tensorflow"), ("portraits", "/models/portraits", "tensorflow")]


HAND_EDITED_CONFIG = """# Served by the office box; edited by hand.
model_config_list: {
  config: {
    name: 'faces'   # the stable one
    base_path: "/srv/models/faces"
    model_platform: "tensorflow"
    model_version_policy { specific { versions: 1 versions: 2 } }
    version_labels { key: "stable" value: 1 }
  }
  config < name: "resnet" base_path: "/srv/models/res}net" model_platform: "tensorflow" >
}
# end of file, with a } in a comment
"""


def test_models_config_keeps_hand_edits_and_comments(tmp_path):
    base = tmp_path / "models"
    base.mkdir()
    (base / "models.config").write_text(HAND_EDITED_CONFIG)
    before = _parse_models_config(base / "models.config")
    register_model(str(base), "faces")  # listed already, with its version policy: left alone
    assert (base / "models.config").read_text() == HAND_EDITED_CONFIG
    register_model(str(base), "portraits")
    portraits = base / "portraits"
    block = f'  config {{\n    name: "portraits"\n    base_path: "{portraits}"\n    model_platform: "tensorflow"\n'
    block += "  }\n"
    assert (base / "models.config").read_text().replace(block, "", 1) == HAND_EDITED_CONFIG  # inserted, nothing else
    after = _parse_models_config(base / "models.config")
    assert list(after.model_config_list.config)[:2] == list(before.model_config_list.config)
    assert list(after.model_config_list.config[0].model_version_policy.specific.versions) == [1, 2]
    assert [(c.name, c.base_path) for c in after.model_config_list.config[2:]] == [("portraits", str(portraits))]
