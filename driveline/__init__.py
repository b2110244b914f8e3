"""The app: the `driveline` command, `serve` and process supervision.

The composition root: the only package that imports every part. Each process kind it starts
(a SIP worker, the speech service, the transcriber, the API) imports only what it runs; the
arrows are checked by tests/test_layers.py and tests/test_process_imports.py.
"""
