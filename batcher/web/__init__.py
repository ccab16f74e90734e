"""The local page of `batcher ui`: routes, templates/, static/ (htmx, vendored), over the same flows."""
