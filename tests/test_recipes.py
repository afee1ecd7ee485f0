"""Which model to train for a budget: the advice a run without --model prints."""

from keras_anime_gan import recipes
from keras_anime_gan.config import resolve_config


def test_the_advice_names_the_recipe_for_the_budget_and_is_silent_when_followed():
    assert recipes.recommend(30).model == "lightweight" and recipes.recommend(None).model == "lightweight"
    assert recipes.recommend(30, gpu=True).model == "stylegan2-ada"
    text = recipes.advice("dcgan", 64, minutes=30)
    assert text.startswith("dcgan is the default") and "for 30 minutes at 64 px" in text
    assert "--model lightweight" in text and "docs/time-to-quality.md" in text
    assert recipes.advice("lightweight", 64, minutes=30) is None


def test_every_recipe_is_a_model_its_options_build_and_its_flags_give(tmp_path):
    import argparse

    from keras_anime_gan import create_gan
    from keras_anime_gan.cli.train import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)

    for recipe in recipes.RECIPES.values():
        options = {**recipe.options, **({"preset": "tiny"} if recipe.model == "stylegan2-ada" else {})}  # small and fast
        assert create_gan(recipe.model, 64, **options).generator is not None
        assert recipe.flags.startswith(f"--model {recipe.model}")
        parsed = config_from_args(parser.parse_args([*recipe.flags.split(), "--out", str(tmp_path / "x")]))
        assert parsed.model == recipe.model
        assert {key: getattr(parsed, key) for key in recipe.settings} == recipe.settings
        assert {key: parsed.model_options[key] for key in recipe.options} == recipe.options  # the flags give it


def test_only_a_new_run_without_model_gets_the_advice(tmp_path):
    assert not resolve_config({"out": str(tmp_path / "a"), "epochs": 1}).model_chosen
    assert resolve_config({"out": str(tmp_path / "b"), "epochs": 1, "model": "dcgan"}).model_chosen
