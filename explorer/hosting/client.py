"""Reaching a served app as a browser does: its URLs, the page over HTTP, then its websocket.

Like a browser, a client first gets the page over HTTP, keeps the cookies it sets in its own
jar and sends them with the websocket, so a balancer with cookie affinity (``deploy/nginx``)
keeps it on one replica; nginx names that replica in the handshake's :data:`REPLICA_HEADER`.
Loopback only: :func:`stream_url` refuses any other host.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import ipaddress
import urllib.request
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

REPLICA_HEADER = "X-Upstream"
"""The response header in which the balancer (deploy/nginx) names the replica that answered."""


class ClientError(Exception):
    """A browser-like client that cannot run, with a one-line message for the user."""


def stream_url(url: str) -> tuple[str, str]:
    """The websocket URL of a Streamlit server on this machine, and its page URL base.

    Raises:
        ClientError: not an http(s)/ws(s) URL, or not a loopback address.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https", "ws", "wss"):
        raise ClientError(f"--url must be an http:// URL, not {url!r}")
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        port = parts.port
    except ValueError:
        loopback, port = False, None
    if not loopback:
        raise ClientError(
            f"--url must be on this machine (127.0.0.1, localhost or ::1), not {host or url!r}"
        )
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    secure = parts.scheme in ("https", "wss")
    base = parts.path.rstrip("/").removesuffix("/_stcore/stream")
    return (
        f"{'wss' if secure else 'ws'}://{netloc}{base}/_stcore/stream",
        f"{'https' if secure else 'http'}://{netloc}{base}",
    )


def fetch_page(url: str, cookies: http.cookiejar.CookieJar, timeout: float) -> None:
    """GET ``url`` as a browser first does, keeping the cookies it sets in ``cookies``.

    Raises:
        OSError: no answer, or an HTTP error status (``urllib.error.HTTPError``).
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # loopback only, as the websocket (proxy=None)
        urllib.request.HTTPCookieProcessor(cookies),
    )
    with opener.open(url, timeout=timeout) as response:
        response.read()


def cookie_header(cookies: http.cookiejar.CookieJar, url: str) -> str | None:
    """The ``Cookie`` header a browser would send to ``url`` from ``cookies``, or None."""
    request = urllib.request.Request(url)
    cookies.add_cookie_header(request)
    return request.get_header("Cookie")


def served_by(upstream: str | None) -> str | None:
    """The replica that answered, from nginx's ``$upstream_addr`` (the last one tried)."""
    if not upstream:
        return None
    return upstream.split(",")[-1].strip() or None


async def open_stream(
    ws_url: str, page_url: str, path: str, cookies: http.cookiejar.CookieJar, timeout: float
) -> ClientConnection:
    """Get the page at ``path`` (keeping its cookies), then open the websocket with them.

    Raises:
        OSError: no answer to the page, or an HTTP error status.
        websockets.exceptions.WebSocketException: the handshake failed.
        TimeoutError: no websocket within ``timeout`` seconds.
    """
    await asyncio.to_thread(fetch_page, f"{page_url}/{path}", cookies, timeout)
    cookie = cookie_header(cookies, f"{page_url}/_stcore/stream")
    return await connect(
        ws_url,
        subprotocols=[Subprotocol("streamlit")],
        additional_headers={"Cookie": cookie} if cookie else None,
        compression=None,  # the server's default: no permessage-deflate
        max_size=None,  # a page's figures can exceed websockets' 1 MiB default
        proxy=None,
        open_timeout=timeout,
    )


def replica_of(connection: ClientConnection) -> str | None:
    """The replica a balancer named in the websocket's handshake (None: no balancer)."""
    if connection.response is None:
        return None
    return served_by(connection.response.headers.get(REPLICA_HEADER))
