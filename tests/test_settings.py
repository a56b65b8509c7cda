"""Settings: the automatic method, validation with named values, JSON round trip, CLI options."""
import argparse
import re

import pytest

from core.cli.settings_args import add_settings_arguments, settings_from_args
from core.errors import SettingsError
from core.settings import Settings


@pytest.mark.parametrize("encoder, method, runs", [
    ("classic", "auto", "atomwalk"), ("diffusion", "auto", "diffcut"),
    ("classic", "diffcut", "diffcut"), ("diffusion", "walk", "walk"), ("diffusion", "diffseg", "diffseg")])
def test_auto_method_picks_the_measured_best_per_encoder(encoder, method, runs):
    assert Settings(encoder=encoder, method=method).cut_method == runs


@pytest.mark.parametrize("changes, named", [
    ({"kl_thresholds": ()}, "kl_thresholds=() must list"), ({"kl_thresholds": (1.1, -1.0)}, "kl_thresholds=(1.1, -1.0)"),
    ({"timestep": -2}, "timestep=-2 must lie in [-1, 999]"),
    ({"walk_steps": -1}, "walk_steps=-1"), ({"walk_steps": 101}, "walk_steps=101"),
    ({"method": "kmeans"}, "method='kmeans'"), ({"dtype": "int8"}, "dtype='int8'"),
    ({"tau": 0.95}, "tau=0.95")])
def test_invalid_values_are_named(changes, named):
    with pytest.raises(SettingsError, match=re.escape(named)):
        Settings(**changes)


def test_json_round_trip_and_wrong_types():
    settings = Settings(method="walk", walk_steps=5, seed=7, dtype="bfloat16", pamr_dilations=(1, 2),
                        kl_thresholds=(0.9, 1.0))
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


def test_every_field_has_metadata_and_a_cli_flag():
    from dataclasses import fields as dataclass_fields

    from core.cli.settings_args import flag
    from core.settings import META
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    options = {option for action in parser._actions for option in action.option_strings}
    assert {f.name for f in dataclass_fields(Settings)} == set(META)
    assert all(flag(name) in options for name in META)


@pytest.mark.parametrize("argv, expected", [
    (["--min-tokens", "8"], {"min_tokens": 8}), (["--max-mask-side", "512"], {"max_mask_side": 512}),
    (["--pamr-dilations", "1,3"], {"pamr_dilations": (1, 3)}), (["--pamr-iterations", "4"], {"pamr_iterations": 4}),
    (["--cache-size", "0"], {"cache_size_mb": 0}), (["--reference-zero-rows"], {"reference_zero_rows": True}),
    (["--tau", "0.95"], {"tau": 0.95, "tau_max": 0.95}),
    (["--kl-thresholds", "0.9,0.9,0.9"], {"kl_thresholds": (0.9, 0.9, 0.9)}), (["--timestep", "-1"], {})])
def test_options_the_old_cli_lacked(argv, expected):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    assert settings_from_args(parser.parse_args(argv)) == Settings().replace(**expected)


def test_a_bad_option_value_is_named(capsys):
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--pamr-dilations", "1,x"])
    assert "pamr_dilations='1,x' is not a comma-separated list" in capsys.readouterr().err
    with pytest.raises(SettingsError, match="diffseg method needs attention maps, which the classic encoder"):
        settings_from_args(parser.parse_args(["--method", "diffseg"]))


@pytest.mark.parametrize("base, changes, expected", [
    ({}, {"cache_size_mb": 10, "allow_download": True, "cache_dir": "/x"}, "none"),
    ({}, {"model": "sd15", "timestep": 300, "device": "cuda"}, "none"),    # the classic encoder reads neither
    ({}, {"walk_steps": 3}, "recut"), ({}, {"tau": 0.45}, "recut"), ({}, {"method": "contour"}, "recut"),
    ({"method": "walk"}, {"method": "diffcut"}, "recut"),
    ({}, {"method": "diffcut"}, "reencode"),                             # the atom walk's contour atoms go
    ({}, {"classic_tokens": 40}, "reencode"), ({}, {"encoder": "diffusion"}, "reencode"),
    ({}, {"pamr_iterations": 3}, "none"), ({"pamr": True}, {"pamr_iterations": 3}, "recut"),
    ({"encoder": "diffusion"}, {"walk_steps": 3}, "none"),               # diffcut runs, it has no walk steps
    ({"encoder": "diffusion"}, {"model": "sd15"}, "reencode"),
    ({"encoder": "diffusion"}, {"method": "walk"}, "reencode"),          # walk reads attention maps
    ({"encoder": "diffusion"}, {"method": "diffseg"}, "reencode"),       # and DiffSeg the clean latent
    ({"encoder": "diffusion", "method": "walk"}, {"method": "diffseg"}, "reencode"),
    ({"encoder": "diffusion", "method": "walk"}, {"walk_steps": 2}, "recut"),
    ({"encoder": "diffusion", "method": "auto"}, {"method": "diffcut"}, "none"),
    ({"encoder": "diffusion", "method": "diffseg"}, {"timestep": 300}, "none"),     # its default timestep
    ({"encoder": "diffusion", "method": "diffseg"}, {"timestep": 50}, "reencode"),
    ({"encoder": "diffusion", "method": "diffseg"}, {"kl_thresholds": (0.9,) * 3}, "recut"),
    ({"encoder": "diffusion"}, {"kl_thresholds": (0.9,) * 3}, "none"),
])
def test_invalidation_says_what_a_change_costs(base, changes, expected):
    from core.settings import invalidation
    old = Settings(**base)
    assert invalidation(old, old.replace(**changes)) == expected


def test_the_encoder_key_changes_exactly_when_the_features_would():
    from core.settings import encoder_key
    from core.encoders.diffusion import DiffusionEncoder

    def encoder_facts(s):
        enc = DiffusionEncoder.from_settings(s)
        return (enc.model_name, enc.timestep, enc.seed, enc.resize_mode, enc.with_attention, enc.add_noise)
    base = Settings(encoder="diffusion", cache_size_mb=0)
    for method in ("auto", "diffcut", "diffseg", "walk"):
        for changes in ({}, {"seed": 1}, {"timestep": 10}, {"tau": 0.3}):
            other = base.replace(method=method, **changes)
            assert (encoder_key(other) == encoder_key(base)) == (encoder_facts(other) == encoder_facts(base))


def test_the_method_registry_is_the_one_source():
    from core.cut.methods import METHODS, METHOD_CHOICES
    from core.settings import META
    assert META["method"].choices == METHOD_CHOICES == ("auto", *METHODS)
    assert all(p in META for m in METHODS.values() for p in m.parameters)
