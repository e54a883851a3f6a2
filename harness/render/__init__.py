"""Pure rendering: data in, text out (terminal, Markdown, HTML through Jinja2 templates, PNG plots).

Nothing here decides anything or touches the file system; :mod:`harness.cli` writes what these
functions return, through :mod:`harness.store.atomic`.
"""
