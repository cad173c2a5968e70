"""``pfes dashboard``: a local web page fed by a pfes publisher's ZeroMQ topics.

:mod:`pfes.dashboard.state` keeps what the page shows; :mod:`pfes.dashboard.server` serves
the page (``static/``, shipped with the package) and pushes batched updates over a WebSocket.
"""
