"""nbgrader settings of the course: this folder is the course (``source/<assignment>/<assignment>.ipynb``).

Run nbgrader's commands here (README, "Instructors: nbgrader"). A notebook's test cells call the kit's
hidden graders: the first one grades the whole notebook file (seconds to a few minutes on a laptop
CPU), and each cell's value is the points it earned, which nbgrader counts as partial credit.
"""
c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "llmlab"
# the first test cell of a notebook runs the hidden graders on it; the notebooks also train small models
c.ExecutePreprocessor.timeout = 1800
# nbgrader's stub for a solution region (`llmlab release` gives the student edition the kit's own stubs,
# which name their task: NotImplementedError("task <topic>.<function>: not implemented yet"))
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
