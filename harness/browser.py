"""Debian's Chromium, as the browser tests and the screenshots drive it (no browser download exists here)."""

CHROMIUM = "/usr/bin/chromium"
# Headless as root, without the background requests this machine's closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
