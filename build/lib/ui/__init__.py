"""The Arolwg web chat (Gradio): ``ui.app`` builds and serves it, ``ui.handlers`` does the work."""
