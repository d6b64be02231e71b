#!/usr/bin/env bash
# Debian packages the test suite needs: the AVR toolchain and simavr (the reference firmware
# runs in an emulated ATmega328P), avrdude (`liquidnode board flash`, tested against an
# emulated bootloader on a pty), the Cortex-M toolchain (exported policies are compiled for it)
# and qemu-system-arm (the Cortex-M4F firmware runs on its mps2-an386 machine: `hil --qemu`),
# OSMesa/EGL for MuJoCo's offscreen renderer (--video), and Xvfb, a virtual display on which
# the test of MuJoCo's viewer window (--viewer) runs.
set -euo pipefail
pkgs=(gcc make pkg-config gcc-avr binutils-avr avr-libc simavr libsimavr-dev libelf-dev avrdude
      gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
      libosmesa6 libegl1 libgl1 libglfw3 xvfb)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -eq 0 ]; then echo "system packages: all present"; exit 0; fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
