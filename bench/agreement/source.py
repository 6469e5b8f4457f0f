"""A fetched corpus: a git checkout or bare mirror, read at one commit.

The benchmark is only comparable from run to run when it reads the same files, so each
corpus is read at a pinned commit (``run.py`` records them) and another commit is refused
unless the caller asks for it. Files are read with ``git show COMMIT:PATH``: nothing is
checked out, and a bare mirror works as well as a work tree.
"""

from __future__ import annotations

import dataclasses
import subprocess
from pathlib import Path


class CorpusError(Exception):
    """A corpus cannot be read as asked; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class GitTree:
    """The files of one commit of a git repository."""

    git_dir: Path
    commit: str

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise CorpusError(
                f"git {' '.join(args)} failed in {self.git_dir}: {result.stderr.strip()}"
            )
        return result.stdout

    def read(self, path: str) -> str:
        return self._git("show", f"{self.commit}:{path}")

    def exists(self, path: str) -> bool:
        try:
            self._git("cat-file", "-e", f"{self.commit}:{path}")
        except CorpusError:
            return False
        return True

    def files(self, under: str) -> list[str]:
        """Every file path at or below ``under`` (a folder), sorted."""
        out = self._git("ls-tree", "-r", "--name-only", self.commit, "--", under.rstrip("/"))
        return sorted(line for line in out.splitlines() if line)


def open_corpus(
    path: Path, *, name: str, pinned: str, commit: str | None, allow_other: bool
) -> GitTree:
    """The corpus at ``path`` read at ``commit`` (default: the pinned one).

    ``path`` is a git work tree or a bare repository (such as a mirror). A commit other
    than ``pinned`` is refused unless ``allow_other`` is true, so that a table in
    BENCHMARKS.md always says which files it was measured on.
    """
    if not path.exists():
        raise CorpusError(f"The {name} corpus path {path} does not exist.")
    probe = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "--absolute-git-dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        raise CorpusError(
            f"{path} is not a git repository (a checkout or a bare mirror of {name} is "
            f"needed, so its pinned commit {pinned} can be read): {probe.stderr.strip()}"
        )
    git_dir = Path(probe.stdout.strip())
    wanted = commit or pinned
    resolved = subprocess.run(
        ["git", f"--git-dir={git_dir}", "rev-parse", "--verify", "--quiet", f"{wanted}^{{commit}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if resolved.returncode != 0:
        raise CorpusError(
            f"The {name} repository at {path} has no commit {wanted}. Fetch it (the pinned "
            f"commit is {pinned}), or name one it has."
        )
    sha = resolved.stdout.strip()
    if sha != pinned and not allow_other:
        raise CorpusError(
            f"The {name} corpus is pinned at {pinned}, but {sha} was asked for. The "
            "published tables are comparable only at the pinned commit; pass "
            "--allow-other-commit to measure another one anyway."
        )
    return GitTree(git_dir, sha)
