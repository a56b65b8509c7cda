"""Test configuration: Qt runs offscreen, caches and settings go to temporary folders."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def ray_address():
    """One local Ray instance (2 CPUs) for the whole test session; yields its address so that
    subprocess drivers can join it with --address."""
    import ray
    import ray.cloudpickle

    import tests.dataset_hooks
    from core.engines.ray_engine import connect

    ray.cloudpickle.register_pickle_by_value(tests.dataset_hooks)
    connect(None, num_cpus=2)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
