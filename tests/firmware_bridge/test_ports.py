"""``liquidnode ports`` and the port helpers (firmware_bridge/ports.py)."""

from __future__ import annotations

import json

import pytest
from serial.tools import list_ports_common

from liquidnode.cli import main
from liquidnode.firmware_bridge import ports


def _usb(device: str, vid: int | None, pid: int | None) -> list_ports_common.ListPortInfo:
    info = list_ports_common.ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.description = vid, pid, f"test {device}"
    return info


def test_board_guess_by_usb_id() -> None:
    assert "Uno" in ports.guess_board(0x2341, 0x0043)
    assert "CH340" in ports.guess_board(0x1A86, 0x7523)
    assert "FTDI" in ports.guess_board(0x0403, 0x6001)
    assert ports.guess_board(0x1234, 0x5678) is None
    assert ports.guess_board(None, None) is None


def test_virtual_ports_need_no_boot_wait() -> None:
    assert ports.is_virtual_port("/dev/pts/7")
    assert ports.is_virtual_port("socket://localhost:5000")
    assert not ports.is_virtual_port("/dev/ttyACM0")
    assert not ports.is_virtual_port("/dev/ttyUSB1")
    assert not ports.is_virtual_port("COM3")


def test_list_ports_filters_sorts_and_guesses(monkeypatch: pytest.MonkeyPatch) -> None:
    found = [_usb("/dev/ttyS0", None, None), _usb("/dev/ttyUSB0", 0x1A86, 0x7523),
             _usb("/dev/ttyACM0", 0x2341, 0x0043)]  # fmt: skip
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: found)
    listed = ports.list_ports()
    assert [p.device for p in listed] == ["/dev/ttyACM0", "/dev/ttyUSB0"]
    assert listed[0].to_json()["usb"] == "2341:0043" and "Uno" in (listed[0].board or "")
    assert [p.device for p in ports.list_ports(include_non_usb=True)][-1] == "/dev/ttyS0"


def test_cli_json_lists_this_machines_ports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ports", "--all", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    keys = {"device", "usb", "vid", "pid", "serial_number", "board", "description"}
    assert all(set(p) == keys for p in out["ports"])


def test_cli_text(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: [])
    assert main(["ports"]) == 0
    assert "no USB serial ports found" in capsys.readouterr().out
    found = [_usb("/dev/ttyACM0", 0x2341, 0x0043)]
    monkeypatch.setattr("serial.tools.list_ports.comports", lambda: found)
    assert main(["ports"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.startswith("/dev/ttyACM0") and "2341:0043" in line and "Uno" in line
