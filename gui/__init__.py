"""CutTree's PySide6 desktop GUI (imports core; core never imports gui)."""
