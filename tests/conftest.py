"""Test configuration: Qt runs offscreen, caches and settings go to temporary folders."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
