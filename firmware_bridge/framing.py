"""Streaming deframer: bytes in, checked frames out, with drop counting and resync.

Feed it whatever the port returned (any chunking: one byte, half a frame, ten frames); it
splits at 0x00, COBS-decodes, checks length, CRC, type and payload length
(:func:`firmware_bridge.protocol.decode_frame`) and returns the good frames. Bad frames are
dropped and counted by reason; after any error the parser is in sync again at the next 0x00.
It never raises on input bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from liquidnode.firmware_bridge import cobs
from liquidnode.firmware_bridge.protocol import MAX_ENCODED, Frame, FrameError, decode_frame

#: Drop reasons, in the order of the receiver checks of PROTOCOL.md section 1.4.
DROP_REASONS = ("oversize", "cobs", "short", "crc", "unknown_type", "bad_length")


@dataclass
class DeframerStats:
    """Counters of a :class:`Deframer`.

    Attributes:
        bytes_in: bytes fed.
        frames_ok: frames that passed every check.
        dropped: dropped frames per reason (keys of :data:`DROP_REASONS`).
    """

    bytes_in: int = 0
    frames_ok: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DROP_REASONS, 0))

    @property
    def crc_errors(self) -> int:
        """Frames dropped for a CRC mismatch."""
        return self.dropped["crc"]

    @property
    def dropped_total(self) -> int:
        """Frames dropped for any reason other than CRC (what STATUS calls dropped_frames)."""
        return sum(v for k, v in self.dropped.items() if k != "crc")


class Deframer:
    """Incremental COBS/0x00 frame splitter and checker.

    Args:
        max_encoded: longest accepted COBS run before a delimiter, bytes (default 247).
    """

    def __init__(self, max_encoded: int = MAX_ENCODED) -> None:
        self.max_encoded = max_encoded
        self.stats = DeframerStats()
        self._buf = bytearray()
        self._oversize = False

    def reset(self) -> None:
        """Forget any partial frame (e.g. after reopening the port); keeps the counters."""
        self._buf.clear()
        self._oversize = False

    def feed(self, data: bytes | bytearray | memoryview) -> list[Frame]:
        """Consume ``data``; return the frames completed by it, in arrival order."""
        data = bytes(data)
        self.stats.bytes_in += len(data)
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return frames
            self._append(data[start:end])
            frame = self._complete()
            if frame is not None:
                frames.append(frame)
            start = end + 1

    def _append(self, chunk: bytes) -> None:
        if self._oversize or not chunk:
            return
        self._buf += chunk
        if len(self._buf) > self.max_encoded:
            self._oversize = True
            self._buf.clear()

    def _complete(self) -> Frame | None:
        if self._oversize:
            self._oversize = False
            self.stats.dropped["oversize"] += 1
            return None
        if not self._buf:
            return None  # idle filler: 0x00 0x00
        encoded = bytes(self._buf)
        self._buf.clear()
        try:
            frame = decode_frame(cobs.decode(encoded))
        except cobs.CobsDecodeError:
            self.stats.dropped["cobs"] += 1
            return None
        except FrameError as exc:
            self.stats.dropped[exc.reason] += 1
            return None
        self.stats.frames_ok += 1
        return frame
