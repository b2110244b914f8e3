"""Recording storage: paths, checksums, retention, range-request serving (later issue)."""
