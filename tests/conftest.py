"""Suite-wide set-up.

The suite checks what liquidnode does on SIGINT, SIGTERM and SIGHUP. liquidnode leaves a
signal it inherited as ignored ignored (``nohup`` keeps working), and so do the processes the
tests start; a suite started under ``nohup`` or as a background job of a script (which ignore
SIGHUP, resp. SIGINT) would then test nothing. The default dispositions are put back here,
once, before any test runs.
"""

from __future__ import annotations

import signal

for _name, _handler in (
    ("SIGINT", signal.default_int_handler),
    ("SIGTERM", signal.SIG_DFL),
    ("SIGHUP", signal.SIG_DFL),
):
    _signum = getattr(signal, _name, None)
    if _signum is not None and signal.getsignal(_signum) is signal.SIG_IGN:
        signal.signal(_signum, _handler)
