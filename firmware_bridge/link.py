"""Host side of the serial link: a pyserial port, a reader thread, frames in and out.

:class:`SerialLink` opens any pyserial port or URL (``/dev/ttyUSB0``, a pty such as
``/dev/pts/5``, ``loop://``, ``socket://host:port``) in raw mode, and runs a reader thread
that does low-latency reads (``read(in_waiting or 1)`` with a short timeout), feeds the
:class:`~firmware_bridge.framing.Deframer` and queues each good frame with its arrival time.
The control loop never blocks on the port: :meth:`SerialLink.recv` waits at most the timeout
it is given. A vanished port (unplugged cable, closed pty, dropped socket) ends the reader;
the next :meth:`recv`/:meth:`send` raises :class:`~controller.errors.LinkError`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from dataclasses import dataclass

from liquidnode.controller.errors import LinkError
from liquidnode.firmware_bridge.framing import Deframer, DeframerStats
from liquidnode.firmware_bridge.protocol import Frame, Message, encode_wire

#: Reader thread's read timeout, s: how quickly it notices close(); not a latency bound
#: (a read returns as soon as a byte arrives).
READ_TIMEOUT_S = 0.02


@dataclass(frozen=True)
class Received:
    """A frame and the host's monotonic arrival time (``time.perf_counter_ns``, ns)."""

    frame: Frame
    t_ns: int


class SerialLink:
    """Frames over a pyserial port.

    Args:
        port: device path or pyserial URL.
        baud: baud rate (ignored by ptys, ``loop://`` and sockets).
        write_timeout_s: give up a write after this long (a stuck port), s.

    Raises:
        LinkError: from :meth:`open` when the port cannot be opened.
    """

    def __init__(self, port: str, baud: int = 115200, write_timeout_s: float = 0.5) -> None:
        self.port = port
        self.baud = baud
        self.write_timeout_s = write_timeout_s
        self.deframer = Deframer()
        self._serial = None
        self._queue: queue.SimpleQueue[Received | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._seq = 0
        self.error: str | None = None

    # ------------------------------------------------------------ lifecycle
    @property
    def is_open(self) -> bool:
        """The port is open and its reader alive."""
        return self._serial is not None and self.error is None

    def open(self) -> None:
        """Open the port (raw, non-blocking reads), flush stale input, start the reader."""
        if self._serial is not None:
            return
        import serial  # pyserial

        try:
            ser = serial.serial_for_url(
                self.port,
                baudrate=self.baud,
                timeout=READ_TIMEOUT_S,
                write_timeout=self.write_timeout_s,
                do_not_open=True,
            )
            if hasattr(ser, "exclusive") and self.port.startswith("/"):
                ser.exclusive = True
            ser.open()
            ser.reset_input_buffer()
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open serial port {self.port!r}: {exc}") from None
        self._serial = ser
        self.error = None
        self.deframer.reset()
        self._queue = queue.SimpleQueue()
        self._stop.clear()
        self._thread = threading.Thread(target=self._reader, name="liquidnode-link", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the reader and close the port. Idempotent; never raises."""
        self._stop.set()
        ser, self._serial = self._serial, None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        self._thread = None
        if ser is not None:
            with contextlib.suppress(Exception):  # closing a broken port
                ser.close()

    # ------------------------------------------------------------ I/O
    def _reader(self) -> None:
        ser = self._serial
        assert ser is not None
        try:
            while not self._stop.is_set():
                data = ser.read(ser.in_waiting or 1)
                if not data:
                    continue
                t_ns = time.perf_counter_ns()
                for frame in self.deframer.feed(data):
                    self._queue.put(Received(frame, t_ns))
        except Exception as exc:  # any port failure ends the link
            if not self._stop.is_set():
                self.error = f"serial port {self.port!r} failed: {exc}"
        finally:
            self._queue.put(None)  # wake a waiting recv()

    def send(self, message: Message) -> int:
        """Encode and write ``message`` with the next sequence number; return that seq.

        Raises:
            LinkError: the port is closed or the write failed.
        """
        ser = self._serial
        if ser is None or self.error is not None:
            raise LinkError(self.error or f"serial port {self.port!r} is not open")
        with self._write_lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
            try:
                ser.write(encode_wire(message, seq))
            except Exception as exc:  # SerialException, OSError, timeout
                self.error = f"write to serial port {self.port!r} failed: {exc}"
                raise LinkError(self.error) from None
        return seq

    def try_send(self, message: Message) -> bool:
        """Write ``message`` if the port is still open, even after a read error (a last
        safe command to a device whose input side failed). Never raises; True if written."""
        ser = self._serial
        if ser is None:
            return False
        with self._write_lock:
            seq = self._seq
            self._seq = (self._seq + 1) & 0xFFFF
            try:
                ser.write(encode_wire(message, seq))
            except Exception:  # SerialException, OSError, timeout: the port is gone
                return False
        return True

    def recv(self, timeout_s: float) -> Received | None:
        """Next received frame, waiting at most ``timeout_s`` (0: poll); None on timeout.

        Raises:
            LinkError: the port vanished or failed (after the frames received before it).
        """
        try:
            item = self._queue.get(timeout=timeout_s) if timeout_s > 0 else self._queue.get_nowait()
        except queue.Empty:
            item = None
        if item is None:
            if self.error is not None:
                self._queue.put(None)  # keep reporting
                raise LinkError(self.error)
            if self._serial is not None and (self._thread is None or not self._thread.is_alive()):
                raise LinkError(f"serial port {self.port!r} closed")
        return item

    def drain(self) -> list[Received]:
        """Everything received so far, without waiting.

        Raises:
            LinkError: the port vanished and nothing is left to read.
        """
        out: list[Received] = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return out
            if item is None:
                self._queue.put(None)
                if out:
                    return out
                raise LinkError(self.error or f"serial port {self.port!r} closed")
            out.append(item)

    @property
    def stats(self) -> DeframerStats:
        """The receive-side drop counters."""
        return self.deframer.stats
