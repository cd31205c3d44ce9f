"""The mounted filesystem without FUSE: records, nodes, naming, the path tree and open-file readers.

Layer L5 (style-anchors §7.2): imports the model, REST, transport, cache and base layers, never
mfusepy (only :mod:`xnatfs.fuseops` and :mod:`xnatfs.daemon` do) and never requests directly.
"""
