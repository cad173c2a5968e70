"""A local RTSP camera for tests: serve an H.264 .mp4 over RTSP with GStreamer.

Run with the system Python (it needs python3-gi and gir1.2-gst-rtsp-server-1.0)::

    /usr/bin/python3 tests/rtsp_server.py CLIP.mp4 PORT [MOUNT]

Prints ``READY rtsp://127.0.0.1:PORT/MOUNT`` on stdout once it is serving, then serves until
killed (SIGTERM/SIGINT). Each client gets the clip from its start, in real time; at the end of
the clip the server ends that client's session (the pipeline sees a lost connection).
"""

import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> int:
    if len(sys.argv) < 3:
        print("usage: rtsp_server.py CLIP.mp4 PORT [MOUNT]", file=sys.stderr)
        return 2
    clip, port = sys.argv[1], sys.argv[2]
    mount = "/" + (sys.argv[3] if len(sys.argv) > 3 else "cam").lstrip("/")
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{clip}" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 )'
    )
    factory.set_shared(False)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{port}", file=sys.stderr)
        return 3
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY rtsp://127.0.0.1:{server.get_bound_port()}{mount}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
