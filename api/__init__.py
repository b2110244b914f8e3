"""The HTTP API (FastAPI).

- `app.py`: `create_app()`, health check, error handlers that keep bad input out of the 500s.
- `deps.py`: what routes declare: `SessionDep`, `CurrentUser`, `ScopeDep`, `AdminUser`, `BusDep`.
- `auth.py`: bearer tokens (only their sha256 is stored).
- `routes/`: one module per resource, mounted under `/api/v1`; thin: parse, call
  `records.queries`, publish events, answer.
- `schemas.py`: request and response bodies; `paging.py`: limit/offset and cursor paging.
- `cli.py` + `supervisor.py`: `driveline serve | users | tokens`.
"""
