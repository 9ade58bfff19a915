#!/usr/bin/python3
"""A real RTSP server for the survey's interop tests: GStreamer's gst-rtsp-server serving a
test pattern on /live, bound to the address and port given (loopback only).

    rtsp-server.py ADDRESS PORT
"""
import ipaddress
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

address, port = sys.argv[1], sys.argv[2]
if not ipaddress.ip_address(address).is_loopback:
    sys.exit(f"rtsp-server.py: {address} is not a loopback address")
Gst.init(None)
server = GstRtspServer.RTSPServer()
server.set_address(address)
server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch("( videotestsrc is-live=true ! fakesink )")
server.get_mount_points().add_factory("/live", factory)
if server.attach(None) == 0:
    sys.exit(f"rtsp-server.py: cannot listen on {address}:{port}")
GLib.MainLoop().run()
