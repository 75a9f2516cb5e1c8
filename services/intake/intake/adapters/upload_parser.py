"""Reading uploaded CSV/XLSX files off the request threads: each file is parsed in a process of its own.

A hostile file (an .xlsx of empty rows, a deeply compressed sheet) costs CPU while it is read. Read on a request
thread, it holds the interpreter lock and slows every other request of the process, ``/health`` included. Here
the request thread only waits for a separate process that reads the file:

- at most ``slots`` files are read at once; an upload that finds every slot taken waits at most a moment and
  is then answered 503 with Retry-After, so uploads can never take all request threads;
- a file that takes longer than ``timeout`` seconds is refused (413) and its process is killed (the process
  also runs under a CPU-time limit of the same length, should the parent die first);
- the reading code is the same (``tabular.read_table``) with the same limits; only where it runs changed.

Processes come from a ``forkserver``: a fresh interpreter, started once (safe beside the server's threads, unlike
``fork`` from the server itself), that has the reading code imported already and forks one child per file. Each
file is still read in a process of its own, stopped when it is done; only the interpreter's start and the imports
(half a second or more per file under load: openpyxl and numpy) are no longer paid per file.
"""

from __future__ import annotations

import logging
import multiprocessing
import resource
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any

from . import tabular
from .tabular import FileRejected, Table, Text

log = logging.getLogger(__name__)

_CONTEXT = multiprocessing.get_context("forkserver")
# what the fork server imports once, so that each reading child starts with it (a child forked from it pays nothing)
_CONTEXT.set_forkserver_preload([__name__, tabular.__name__, "openpyxl"])
QUEUE_WAIT_SECONDS = 2.0  # how long an upload waits for a free slot before it gets 503


class ParserBusy(Exception):
    """Every slot is reading a file: try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("every upload slot is busy")
        self.retry_after = retry_after


def _read_in_child(conn: Connection, data: bytes, max_rows: int, sheet_titles: Sequence[str],
                   cpu_seconds: int) -> None:
    """Runs in the parsing process: read the table and send it back (or why it was refused)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    limit = cpu_seconds if hard == resource.RLIM_INFINITY else min(cpu_seconds, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))
    try:
        table = tabular.read_table(data, max_rows, sheet_titles)
    except FileRejected as exc:
        conn.send(("rejected", tuple(exc.reason), exc.status, exc.row))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as an unreadable file
        conn.send(("failed", type(exc).__name__))
    else:
        conn.send(("ok", table))
    conn.close()


def too_slow(timeout: float) -> FileRejected:
    seconds = f"{timeout:g}"
    return FileRejected(Text(
        f"Het bestand kost te veel werk om te lezen (meer dan {seconds} seconden); er is niets opgeslagen. "
        "Verwijder lege rijen en kolommen of splits het bestand.",
        f"The file takes too much work to read (more than {seconds} seconds); nothing was stored. Remove empty "
        "rows and columns or split the file."), status=413)


class IsolatedParser:
    """``read(data, max_rows, sheet_titles)``: ``tabular.read_table`` in a process of its own, bounded."""

    def __init__(self, *, slots: int = 2, timeout: float = 120.0) -> None:
        self.slots = slots
        self.timeout = timeout
        self._free = threading.BoundedSemaphore(slots)

    def read(self, data: bytes, max_rows: int, sheet_titles: Sequence[str] = ()) -> Table:
        if not self._free.acquire(timeout=QUEUE_WAIT_SECONDS):
            raise ParserBusy(retry_after=max(1, int(self.timeout)))
        try:
            return self._read(data, max_rows, sheet_titles)
        finally:
            self._free.release()

    def _read(self, data: bytes, max_rows: int, sheet_titles: Sequence[str]) -> Table:
        receive, send = _CONTEXT.Pipe(duplex=False)
        process = _CONTEXT.Process(target=_read_in_child, name="intake-upload-parser", daemon=True,
                                   args=(send, data, max_rows, tuple(sheet_titles), max(1, int(self.timeout) + 1)))
        process.start()
        send.close()
        try:
            if not receive.poll(self.timeout):
                log.warning("upload took too long to read; its parser was stopped",
                            extra={"timeout_seconds": self.timeout, "bytes": len(data)})
                raise too_slow(self.timeout)
            try:
                answer: tuple[Any, ...] = receive.recv()
            except EOFError:  # the process died (CPU limit, memory): the file is the cause
                raise too_slow(self.timeout) from None
        finally:
            receive.close()
            if process.is_alive():
                process.kill()
            process.join(5)
            process.close()
        match answer:
            case ("ok", Table() as table):
                return table
            case ("rejected", (str() as nl, str() as en), int() as status, row):
                raise FileRejected(Text(nl, en), status=status, row=row)
            case _:
                log.warning("upload parser failed", extra={"error": str(answer[-1])[:100]})
                raise FileRejected(Text("Het bestand kan niet gelezen worden.", "The file cannot be read."))
