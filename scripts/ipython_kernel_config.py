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
# The kernel's log warning "Kernel is running over TCP without encryption" (ipykernel 7),
# printed once per executed notebook: the build's kernels listen on localhost only, for
# the one client that started them. Only that message is dropped; other warnings stay.
import logging as _logging  # noqa: E402

_logging.getLogger("IPKernelApp").addFilter(
    lambda record: "without encryption" not in record.getMessage()
)
# PyTorch's C++ log warnings (chapter 16 runs DDP in the kernel; its reducer notes that
# `find_unused_parameters=True` found every parameter used in the forward pass) would
# reach the page with the build machine's timestamp and process rank. Set before any
# cell imports torch, this keeps C++ errors and drops its info and warnings, in the
# build's kernels only: readers running the notebooks see them. Chapter 11's worker
# processes are launched with the same setting (mlh.distributed).
import os as _os  # noqa: E402

_os.environ.setdefault("TORCH_CPP_LOG_LEVEL", "ERROR")
