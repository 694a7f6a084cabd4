"""Atomic writing of result files and whole result folders (one home for it).

A crash, Ctrl-C or SIGTERM never leaves half a result:

* :func:`write_atomic` writes a file through a temporary file in the same folder and a
  rename;
* :func:`atomic_folder` gives a temporary folder beside the target; everything written into
  it is moved into place in one step when the block ends without error (the target folder
  renamed in whole when it does not exist or holds only files of earlier runs, else the
  files moved in one by one with the earlier run's files moved out first), so a re-run never
  leaves files of two runs side by side and a failed run leaves the previous result intact.

While a write is in progress SIGTERM is turned into an exception, so the temporary files and
folders are removed before the process ends with the signal's usual status; the final
renames run with SIGINT and SIGTERM blocked. Temporaries left by a process killed outright
(SIGKILL) carry its process id and are removed by the next write beside them. A folder that
cannot be created or written raises :class:`~queueing_llm.errors.OutputError` naming it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import OutputError

__all__ = ["write_atomic", "write_bytes_atomic", "atomic_folder", "atomic_files", "file_mode"]

_depth = 0  # nesting of the SIGTERM guard (only the outermost one acts)


class _Terminated(BaseException):
    """SIGTERM received during an atomic write (raised to run the clean-up)."""


def file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` alone gives 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _folder_mode() -> int:
    """Permissions of a new folder under the current umask (``mkdtemp`` alone gives 0700)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o777 & ~mask


@contextlib.contextmanager
def _sigterm_cleans_up() -> Iterator[None]:
    """Turn SIGTERM into an exception inside the block (main thread only), then end the
    process with SIGTERM as usual once the clean-up code of the block has run."""
    global _depth
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    active = main and _depth == 0 and previous not in (signal.SIG_IGN, None)
    if active:

        def handler(signum: int, frame: object) -> None:
            raise _Terminated()

        signal.signal(signal.SIGTERM, handler)
    _depth += 1
    try:
        yield
    except _Terminated:
        if not active:
            raise
        signal.signal(signal.SIGTERM, previous)
        active = False
        signal.raise_signal(signal.SIGTERM)  # the default action ends the process here
        raise KeyboardInterrupt("terminated (SIGTERM)") from None  # a handler that returned
    finally:
        _depth -= 1
        if active:
            signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _signals_blocked() -> Iterator[None]:
    """SIGINT and SIGTERM held back (delivered after the block) where the platform allows."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process
        return True
    return True


def _remove_stale(folder: Path, name: str) -> None:
    """Remove temporaries of ``name`` left in ``folder`` by processes that no longer run."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:tmp|old)-(\d+)-")
    try:
        entries = list(folder.iterdir())
    except OSError:
        return
    for entry in entries:
        m = pattern.match(entry.name)
        if m and int(m.group(1)) != os.getpid() and not _alive(int(m.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _output_error(folder: Path, err: OSError, what: str) -> OutputError:
    return OutputError(f"cannot write {what} into the folder {str(folder)!r}: {err.strerror or err}")


def _write(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _output_error(folder, err, path.name) from None
    _remove_stale(folder, path.name)
    with _sigterm_cleans_up():
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.tmp-{os.getpid()}-", suffix=".tmp")
        except OSError as err:
            raise _output_error(folder, err, path.name) from None
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, file_mode())
            os.replace(tmp, path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise _output_error(folder, exc, path.name) from None
            raise
    return path


def write_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file in the same folder and a
    rename; returns the path. An unwritable folder raises :class:`OutputError` naming it."""
    return _write(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`write_atomic` for bytes (images, archives)."""
    return _write(path, bytes(data))


def _commit(tmp: Path, target: Path, owned: set[str]) -> None:
    """Move the files of ``tmp`` into ``target``, the earlier run's files out (signals held)."""
    new = set(os.listdir(tmp))
    with _signals_blocked():
        if not target.exists():
            os.rename(tmp, target)
            return
        present = set(os.listdir(target))
        parent = target.parent
        trash = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.old-{os.getpid()}-"))
        cwd = Path.cwd()
        holds_cwd = cwd == target or target in cwd.parents  # renaming it would move the working folder
        if present <= owned | new and not holds_cwd:  # only files of earlier runs: swap the folders whole
            os.rename(target, trash / target.name)
            os.rename(tmp, target)
        else:  # the folder holds other files too: replace only the run's own files
            for name in sorted(present & (owned | new)):
                os.rename(target / name, trash / name)
            for name in sorted(new):
                os.rename(tmp / name, target / name)
            os.rmdir(tmp)
    shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike, owned: Iterable[str] = ()) -> Iterator[Path]:
    """A temporary folder beside ``target``, moved into place when the block succeeds.

    Parameters
    ----------
    target : path
        The result folder (created with its parents if needed).
    owned : iterable of str
        Names of the files this kind of result may contain: an earlier run's files of these
        names are removed on success even when this run does not write them (a report
        without figures replacing one with figures). Other files in ``target`` are kept.

    Yields
    ------
    pathlib.Path
        The temporary folder to write into. On an exception (including KeyboardInterrupt
        and SIGTERM) it is removed and ``target`` is left as it was.
    """
    target = Path(target).absolute()
    if target.is_symlink():  # write into the folder the link points to; the link stays
        target = target.resolve()
    if target.exists() and not target.is_dir():
        raise OutputError(f"the output folder {str(target)!r} is an existing file")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _output_error(parent, err, f"the folder {target.name!r}") from None
    _remove_stale(parent, target.name)
    with _sigterm_cleans_up():
        try:
            tmp = Path(tempfile.mkdtemp(dir=parent, prefix=f".{target.name}.tmp-{os.getpid()}-"))
            os.chmod(tmp, _folder_mode())
        except OSError as err:
            raise _output_error(parent, err, f"the folder {target.name!r}") from None
        try:
            yield tmp
            try:
                _commit(tmp, target, set(owned))
            except OSError as err:
                raise _output_error(target, err, "the result files") from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_files(*paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Temporary paths for files that belong together (a table and its metadata), all in one
    folder; on success they replace ``paths`` together with SIGINT and SIGTERM held back, on
    an exception none of them changes.

    Yields
    ------
    list of pathlib.Path
        Where to write each file, in the order of ``paths``.
    """
    targets = [Path(p) for p in paths]
    if not targets:
        raise OutputError("atomic_files needs at least one path")
    folder = targets[0].absolute().parent
    if any(t.absolute().parent != folder for t in targets):
        raise OutputError(f"files written together must share one folder, got {[str(t) for t in targets]}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _output_error(folder, err, targets[0].name) from None
    _remove_stale(folder, targets[0].name)
    with _sigterm_cleans_up():
        try:
            tmp = Path(tempfile.mkdtemp(dir=folder, prefix=f".{targets[0].name}.tmp-{os.getpid()}-"))
        except OSError as err:
            raise _output_error(folder, err, targets[0].name) from None
        try:
            yield [tmp / t.name for t in targets]
            try:
                with _signals_blocked():
                    for t in targets:
                        os.replace(tmp / t.name, t)
            except OSError as err:
                raise _output_error(folder, err, ", ".join(t.name for t in targets)) from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
