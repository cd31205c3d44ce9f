"""The filesystem view (L5): paths → nodes over the model and caches; independent of FUSE."""
