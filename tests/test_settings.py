"""Settings: the automatic method, validation with named values, JSON round trip, CLI options."""
import argparse

import pytest

from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.errors import SettingsError
from core.settings import Settings


@pytest.mark.parametrize("encoder, method, runs", [
    ("classic", "auto", "walk"), ("diffusion", "auto", "diffcut"),
    ("classic", "diffcut", "diffcut"), ("diffusion", "walk", "walk"), ("diffusion", "diffseg", "diffseg")])
def test_auto_method_picks_the_measured_best_per_encoder(encoder, method, runs):
    assert Settings(encoder=encoder, method=method).cut_method == runs


@pytest.mark.parametrize("changes, named", [
    ({"walk_steps": -1}, "walk_steps=-1"), ({"walk_steps": 101}, "walk_steps=101"),
    ({"method": "kmeans"}, "method='kmeans'"), ({"dtype": "int8"}, "dtype='int8'"),
    ({"tau": 0.9}, "tau=0.9")])
def test_invalid_values_are_named(changes, named):
    with pytest.raises(SettingsError, match=named.replace("(", r"\(")):
        Settings(**changes)


def test_json_round_trip_and_wrong_types():
    settings = Settings(method="walk", walk_steps=5, seed=7, dtype="bfloat16", pamr_dilations=(1, 2))
    assert Settings.from_dict(settings.to_dict()) == settings
    with pytest.raises(SettingsError, match="walk_steps='5'"):
        Settings.from_dict({"walk_steps": "5"})


def test_every_cli_option_reaches_the_settings():
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    args = parser.parse_args(["--encoder", "diffusion", "--model", "sd15", "--device", "cpu",
                              "--dtype", "float32", "--seed", "3", "--method", "walk", "--walk-steps", "4",
                              "--alpha", "8", "--tau", "0.3", "--tau-max", "0.6", "--timestep", "100",
                              "--resize-mode", "square", "--tokens", "40", "--pamr", "--allow-download"])
    s = settings_from_args(args)
    assert (s.encoder, s.model, s.device, s.dtype, s.seed, s.method, s.walk_steps) == \
        ("diffusion", "sd15", "cpu", "float32", 3, "walk", 4)
    assert (s.alpha, s.tau, s.tau_max, s.timestep, s.resize_mode, s.classic_tokens, s.pamr, s.allow_download) == \
        (8.0, 0.3, 0.6, 100, "square", 40, True, True)
    assert settings_from_args(parser.parse_args([])) == Settings()
