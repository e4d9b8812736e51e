"""TLS on the WebSocket listener (``server.tls_cert_file`` / ``server.tls_key_file``).

The transport (gateway/transport.py) drives plain non-blocking sockets: it
calls ``recv``/``send``, treats ``BlockingIOError`` as "wait for the kernel"
and any other ``OSError`` as a dead peer. An ``ssl.SSLSocket`` fits that once
its "want read/write" errors (which are ``OSError`` too) read as
``BlockingIOError``, so ``TlsSocket`` does only that, and the transport needs
no TLS branch. It is safe because the transport always calls ``recv`` before
waiting for readability: data OpenSSL has already decrypted is read first,
and a wait happens only when OpenSSL wants more bytes from the socket. The
outbox keeps unsent bytes at its front and only grows at its end, which is
what OpenSSL asks of a retried write.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

import trio

from sandcat.errors import ConfigError

_WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError)


class TlsSocket(ssl.SSLSocket):
    """An ``SSLSocket`` whose would-block errors are ``BlockingIOError``."""

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        try:
            return super().recv(buflen, flags)
        except _WOULD_BLOCK:
            raise BlockingIOError from None
        except ssl.SSLZeroReturnError:
            return b""  # the peer's close_notify: the end of the stream

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return super().send(data, flags)
        except _WOULD_BLOCK:
            raise BlockingIOError from None


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context for the certificate chain and key; ``ConfigError`` naming
    the setting when either cannot be used. TLS 1.2 at least."""
    if bool(cert_file) != bool(key_file):
        missing = "server.tls_key_file" if cert_file else "server.tls_cert_file"
        raise ConfigError(missing, "", "needed too: set both TLS files or neither")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = TlsSocket
    try:
        context.load_cert_chain(cert_file, key_file)
    except FileNotFoundError as exc:
        key = "server.tls_cert_file" if exc.filename == cert_file else "server.tls_key_file"
        raise ConfigError(key, exc.filename, "no such file") from exc
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("server.tls_cert_file", cert_file, f"cannot load: {exc}") from exc
    return context


async def handshake(
    context: ssl.SSLContext, sock: socket.socket, *, timeout_s: float
) -> socket.socket | None:
    """The TLS server handshake on an accepted socket, within ``timeout_s``; the
    wrapped socket, or None (socket closed) if the client failed or stalled."""
    wrapped = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
    with trio.move_on_after(timeout_s):
        while True:
            try:
                wrapped.do_handshake()
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(wrapped)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(wrapped)
            except OSError:  # a bad client hello, a reset: nothing to answer
                break
            else:
                return wrapped
    trio.lowlevel.notify_closing(wrapped)
    wrapped.close()
    return None
