"""The window's dialogs (export, settings, help)."""
