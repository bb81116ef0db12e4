"""Small importable applications for the real-socket tests of the server.

They are plain exchange apps (an object with ``handle_exchange``), so they
exercise the server and the command line without the web layer.
"""
