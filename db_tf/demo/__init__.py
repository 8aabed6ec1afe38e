"""A local web page to try presets on images and tune the post-processing (`db-tf demo`).

    from db_tf.demo import DemoApp, serve_in_thread
    server = serve_in_thread(DemoApp({"ppocrv4_mobile": "ppocrv4_mobile"}))
    print(server.url)

server.py holds the API (standard-library HTTP server); static/ holds the page (plain HTML, CSS and JS,
no build step, nothing fetched from the network).
"""
from db_tf.demo.server import DemoApp, DemoError, DemoServer, serve_in_thread

__all__ = ["DemoApp", "DemoError", "DemoServer", "serve_in_thread"]
