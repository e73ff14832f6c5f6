"""One-button deployment: a static site (PWA) that runs the same style model files in a phone's
browser on onnxruntime-web, vendored into the site at build time (nothing is fetched when the
page runs). site.py builds it, serve.py serves it on the LAN (TLS with a self-signed
certificate), check.py measures its parity with palmbrush in headless Chromium."""

from __future__ import annotations

ORT_WEB = "1.31.1"  # the onnxruntime-web the site vendors; parity is measured with this one
