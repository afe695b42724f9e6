"""nbgrader settings of the Chinese edition of the course (``source/<assignment>/<assignment>.ipynb``).

The same notebooks as ``notebooks/`` with Chinese prose, built by ``llmlab notebooks`` from
``notebooks/src/`` and ``notebooks/src/zh/``; their test cells give feedback in Chinese. Run nbgrader's
commands in this folder exactly as in ``notebooks/`` (README.zh.md).
"""
c = get_config()  # noqa: F821 - provided by nbgrader when it loads this file

c.CourseDirectory.course_id = "llmlab-zh"
# the first test cell of a notebook runs the hidden graders on it; the notebooks also train small models
c.ExecutePreprocessor.timeout = 1800
c.ClearSolutions.code_stub = {"python": "# 在此写下你的代码\nraise NotImplementedError()"}
