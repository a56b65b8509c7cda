"""Cut methods: token features or attention in, a token-level cut hierarchy out."""
