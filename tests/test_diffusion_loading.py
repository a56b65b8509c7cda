"""Model loading through the real code path: local folders, the Hugging Face cache, single files,
and a clear one-line ModelLoadError for every way it can fail."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import huggingface_hub.constants as hub_constants
import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import core.encoders.model_loading as model_loading
from core.encoders.devices import choose_device, choose_dtype
from core.encoders.diffusion import DiffusionEncoder
from core.encoders.empty_prompt import EmptyPromptStore
from core.encoders.model_source import check_safetensors, resolve_source
from core.errors import ModelLoadError, SettingsError
from tests.tiny_models import tiny_model


def load(model: str, tmp_path: Path, allow_download: bool = False, features_only: bool = True):
    source = resolve_source(model, allow_download)
    return model_loading.load_model(source, torch.device("cpu"), torch.float32, features_only,
                                    EmptyPromptStore(tmp_path / "prompts"), allow_download)


def copy_model(kind: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model(kind), tmp_path / kind))


def assert_one_line(error: pytest.ExceptionInfo, *phrases: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    for phrase in phrases:
        assert phrase in message, message


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        resolve_source(str(tmp_path / "no-such-model"), False)
    assert_one_line(error, "does not exist", "ssd-1b")


def test_unknown_name():
    with pytest.raises(ModelLoadError) as error:
        resolve_source("stable-diffusion-9", False)
    assert_one_line(error, "unknown model 'stable-diffusion-9'", "preset")


def test_folder_that_is_not_a_diffusers_model(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "readme.txt").write_text("not a model")
    with pytest.raises(ModelLoadError) as error:
        load(str(tmp_path / "photos"), tmp_path)
    assert_one_line(error, "not a diffusers model folder", "model_index.json")


def test_pipeline_without_unet_is_the_wrong_architecture(tmp_path):
    folder = tmp_path / "flux"
    (folder / "transformer").mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    with pytest.raises(ModelLoadError) as error:
        load(str(folder), tmp_path)
    assert_one_line(error, "FluxPipeline", "wrong architecture", "SDXL")


def test_unconditional_unet_is_the_wrong_architecture(tmp_path):
    folder = copy_model("sd1", tmp_path)
    config = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**config, "_class_name": "UNet2DModel"}))
    with pytest.raises(ModelLoadError) as error:
        load(str(folder), tmp_path)
    assert_one_line(error, "UNet2DModel", "wrong architecture")


def test_truncated_weights_in_a_folder(tmp_path):
    folder = copy_model("sd1", tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelLoadError) as error:
        load(str(folder), tmp_path)
    assert_one_line(error, "truncated", str(weights), "download or copy it again")


def test_truncated_single_file(tmp_path):
    path = tmp_path / "model.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(64, 64)}, str(path))
    assert check_safetensors(path) == ["model.diffusion_model.input_blocks.0.0.weight"]
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelLoadError) as error:
        load(str(path), tmp_path)
    assert_one_line(error, "truncated")
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ModelLoadError) as error:
        load(str(path), tmp_path)
    assert_one_line(error, "not a valid .safetensors file")


def test_single_file_that_is_not_stable_diffusion(tmp_path):
    path = tmp_path / "classifier.safetensors"
    save_file({"fc.weight": torch.zeros(4, 4)}, str(path))
    with pytest.raises(ModelLoadError) as error:
        load(str(path), tmp_path)
    assert_one_line(error, "not a Stable Diffusion checkpoint")


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face cache and an endpoint that refuses connections: no network at all."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return cache


def test_preset_not_in_cache_with_downloads_off(empty_hub_cache):
    with pytest.raises(ModelLoadError) as error:
        resolve_source("sd15", allow_download=False)
    assert_one_line(error, "stable-diffusion-v1-5/stable-diffusion-v1-5", "downloads are off", "--allow-download")


def test_download_without_network(empty_hub_cache):
    with pytest.raises(ModelLoadError) as error:
        resolve_source("ssd-1b", allow_download=True)
    assert_one_line(error, "could not download 'segmind/SSD-1B'", "network")


def test_download_with_hub_offline_mode(empty_hub_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as error:
        resolve_source("sdxl-base", allow_download=True)
    assert_one_line(error, "HF_HUB_OFFLINE")


def test_repo_from_the_hub_cache_loads_offline(empty_hub_cache, tmp_path):
    revision = "0123456789abcdef0123456789abcdef01234567"
    repo = empty_hub_cache / "models--tiny-org--tiny-sdxl"
    shutil.copytree(tiny_model("sdxl"), repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    model = load("tiny-org/tiny-sdxl", tmp_path)
    assert model.family == "sdxl" and model.label == "tiny-org/tiny-sdxl"
    assert model.native_resolution == 128 and model.stride == 32
    assert model.prompt.pooled is not None


def test_empty_prompt_is_computed_once_per_model(tmp_path, monkeypatch):
    first = load(str(tiny_model("sd1")), tmp_path)
    assert len(list((tmp_path / "prompts").glob("*.npz"))) == 1

    def text_encoders_must_not_load(*args):
        raise AssertionError("text encoders loaded although the empty prompt is cached")

    monkeypatch.setattr(model_loading, "_empty_prompt_from_folder", text_encoders_must_not_load)
    second = load(str(tiny_model("sd1")), tmp_path)
    assert torch.equal(first.prompt.hidden, second.prompt.hidden)
    assert first.prompt.pooled is None and first.family == "sd1"


def test_attention_mode_keeps_the_whole_unet(tmp_path):
    model = load(str(tiny_model("sd1")), tmp_path, features_only=False)
    assert model.unet.mid_block is not None and len(model.unet.up_blocks) == 4
    assert model.vae.decoder is None


def test_encoder_reports_model_errors_before_any_work(tmp_path):
    encoder = DiffusionEncoder(model=str(tmp_path / "missing"), cache_dir=str(tmp_path))
    with pytest.raises(ModelLoadError):
        encoder.encode(np.zeros((8, 8, 3), np.uint8))


def test_device_and_dtype_choice():
    assert choose_dtype("auto", torch.device("cpu")) == torch.float32
    assert choose_dtype("auto", torch.device("cuda")) == torch.float16
    assert choose_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(SettingsError):
        choose_dtype("float16", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(SettingsError, match="no CUDA GPU"):
            choose_device("cuda")
        assert choose_device("auto").type in ("cpu", "mps")


def test_vae_runs_in_float32_unless_its_config_allows_float16():
    assert model_loading.vae_dtype({}, torch.float16) == torch.float32
    assert model_loading.vae_dtype({"force_upcast": True}, torch.float16) == torch.float32
    assert model_loading.vae_dtype({"force_upcast": False}, torch.float16) == torch.float16
    assert model_loading.vae_dtype({}, torch.bfloat16) == torch.bfloat16
