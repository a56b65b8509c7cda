"""CutTree's Qt-free core: image loading, encoders, cut methods, the segment tree, persistence and export."""
