"""The environment pa runs git in, as plain constants: shared by ``git`` and by the light
`pa diff` client (``_quick``), which runs git itself and may import nothing heavy."""

from __future__ import annotations

# Keep git from prompting, paging or reading the user's global hooks config in ways
# that would make an orchestrator hang or behave differently per machine.
BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "LC_ALL": "C",
}

# Variables that would point git at another repository, index or object store than the
# one we name explicitly (set, for example, when pa runs from inside a git hook).
REPO_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
)
