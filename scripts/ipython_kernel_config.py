# IPython kernel settings for the book build only (`make book`, `make test-notebooks`
# copy this into _build/ipython/profile_default/ and point IPYTHONDIR there).
# A cell tagged `raises-exception` shows just the exception's type and message: no frames
# of PyTorch internals and no paths of the machine that built the book. Readers running
# the notebooks themselves keep IPython's usual full tracebacks.
c = get_config()  # noqa: F821
c.InteractiveShell.xmode = "Minimal"
