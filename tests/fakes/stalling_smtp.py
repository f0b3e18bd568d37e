"""A raw SMTP peer that stalls on purpose, to kill a sender at an exact moment.

``stall="greeting"``: accepts the TCP connection and never greets (the sender hangs connecting).
``stall="after_data"``: speaks SMTP, takes the whole message, then never answers the final
"." — the message is on the server but the sender has no acceptance: the one window in which a
crash must be allowed to cause one (recognisable) duplicate.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Literal


class StallingSmtp:
    def __init__(self, port: int, stall: Literal["greeting", "after_data"]) -> None:
        self.port = port
        self.stall = stall
        self.received: list[bytes] = []
        self.connected = threading.Event()
        self.data_received = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", port), reuse_port=False)
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._conns.append(conn)
            self.connected.set()
            if self.stall == "greeting":
                continue
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            conn.sendall(b"220 stalling.test ESMTP\r\n")
            while line := reader.readline():
                verb = line.strip().upper()
                if verb.startswith((b"EHLO", b"HELO")):
                    conn.sendall(b"250 stalling.test\r\n")
                elif verb.startswith((b"MAIL", b"RCPT", b"RSET", b"NOOP")):
                    conn.sendall(b"250 OK\r\n")
                elif verb == b"DATA":
                    conn.sendall(b"354 go ahead\r\n")
                    body = []
                    while (chunk := reader.readline()) and chunk != b".\r\n":
                        body.append(chunk)
                    self.received.append(b"".join(body))
                    self.data_received.set()
                    return  # ... and never answer: the sender waits for acceptance
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
        except OSError:
            return
        finally:
            reader.close()

    def close(self) -> None:
        # shutdown() first: close() alone neither wakes the thread blocked in accept() nor
        # frees a connection whose file object another thread still holds.
        for sock in (self._sock, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)
