# nbgrader settings for a course that grades this book's chapters: copy this file to the
# course directory (next to source/), where nbgrader reads it. tests/house/test_grading.py
# grades with it.
import warnings

from sqlalchemy.exc import SAWarning

c = get_config()  # noqa: F821

# nbgrader 0.9.6's gradebook triggers SQLAlchemy's "Object of type <SubmittedAssignment>
# not in session" warnings during autograde; they concern nbgrader's own session handling,
# not the course, and every grade is still recorded.
warnings.filterwarnings("ignore", category=SAWarning, module=r"nbgrader\.")
warnings.filterwarnings("ignore", category=SAWarning, message=r".*not in session")

# The grading kernel's log warning "Kernel is running over TCP without encryption", once
# per notebook: the kernel listens on localhost for nbgrader alone. Errors still show.
c.ExecutePreprocessor.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
