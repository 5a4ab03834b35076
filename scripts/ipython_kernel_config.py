# IPython kernel settings for the book build only (`make book`, `make test-notebooks`
# copy this into _build/ipython/profile_default/ and point IPYTHONDIR there).
# A cell tagged `raises-exception` shows just the exception's type and message: no frames
# of PyTorch internals and no paths of the machine that built the book. Readers running
# the notebooks themselves keep IPython's usual full tracebacks.
c = get_config()  # noqa: F821
c.InteractiveShell.xmode = "Minimal"
# Warnings likewise: "UserWarning: message", without the temporary file and line number
# that IPython gives each cell on the build machine.
c.InteractiveShellApp.exec_lines = [
    "import warnings as _w; "
    "_w.formatwarning = lambda msg, cat, *_args, **_kw: f'{cat.__name__}: {msg}\\n'; "
    "del _w"
]
