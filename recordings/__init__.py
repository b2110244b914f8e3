"""Recording storage: paths, checksums, retention; `serve` streams them with range requests."""
