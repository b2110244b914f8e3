"""Security headers on every response, and the one rule for "is this request over https".

The pages load only their own files (`/static/app.js`, `/static/app.css`, no inline script or
style), so their Content-Security-Policy allows nothing but 'self'; a script an attacker gets
into a page cannot run, and no other site may frame it (clickjacking). The API docs pages
(`/docs`, `/redoc`) are FastAPI's: they load Swagger UI / ReDoc from a CDN with an inline
script, so they get a policy that allows exactly that, and hold no user data.

Behind a TLS-terminating proxy the app may see plain http: `cookie_secure` says what the
deployment is (True: https, so Secure cookies and HSTS; None: trust the request's scheme, which
uvicorn takes from X-Forwarded-Proto only when the proxy is a trusted address).
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PAGES_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
    "font-src 'self' https://fonts.gstatic.com; "
    "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
HSTS = "max-age=31536000; includeSubDomains"
COMMON = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def is_https(scheme: str, cookie_secure: bool | None) -> bool:
    """Whether to mark cookies Secure and send HSTS: the setting, else the request's scheme."""
    return cookie_secure if cookie_secure is not None else scheme in ("https", "wss")


class SecurityHeaders:
    """ASGI middleware (not BaseHTTPMiddleware, which would buffer the SSE stream's start)."""

    def __init__(self, app: ASGIApp, *, cookie_secure: bool | None) -> None:
        self.app = app
        self.cookie_secure = cookie_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = DOCS_CSP if scope["path"] in DOCS_PATHS else PAGES_CSP
        https = is_https(scope.get("scheme", "http"), self.cookie_secure)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                for name, value in COMMON.items():
                    headers.setdefault(name, value)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)
