"""cadaver (neon): a scripted session of every command it has, on the local, sftp and s3 mounts.

cadaver always exits 0, so failures are read from its output: every
command announces itself ("Uploading ...", "Locking ...") and ends in
"succeeded." or "failed:" followed by the reason. The commands of WebDAV
extensions davgate does not offer (DeltaV versioning, DASL search, Apache's
executable property) must fail cleanly with the server's answer; every other
command must succeed, and what it did is checked on the server.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.clients.gateway import PASSWORD, USER, WRITABLE, Gateway

# verb (the text before the first backquote) -> how it must end
NOT_OFFERED = {
    "Versioning": "405 Method Not Allowed",
    "Checking in": "405 Method Not Allowed",
    "Checking out": "405 Method Not Allowed",
    "Cancelling check out of": "405 Method Not Allowed",
    "Version history of": "405 Method Not Allowed",
    "Labelling": "405 Method Not Allowed",
    "Using query: getcontentlength > 1 ,": "405 Method Not Allowed",
    "Setting isexecutable": "The server does not support the 'isexecutable' property.",
}
# `open` comes before any `cd`: cadaver 0.24 frees the old path twice when it
# opens a server after a `cd` (double free, SIGABRT), whatever the server.
SESSION = """\
about
help put
describe lockowner
set lockowner mailto:alice@example.org
close
open {url}
logout
ls
pwd
mkcol cad
cd cad
pwd
lcd {work}
lpwd
lls
put local.txt a.txt
lcd {work}/many
mput m1.txt m2.txt
lcd {work}
ls
cat a.txt
less a.txt
edit a.txt
cat a.txt
propset a.txt color red
propget a.txt color
propnames a.txt
propget a.txt
propdel a.txt color
chexec + a.txt
lock a.txt
showlocks
discover a.txt
put second.txt a.txt
unlock a.txt
unset lockowner
lock a.txt
steal a.txt
copy a.txt b.txt
move b.txt c.txt
get c.txt got.txt
mget m1.txt m2.txt
version a.txt
checkin a.txt
checkout a.txt
uncheckout a.txt
history a.txt
label a.txt add v1
search getcontentlength > 1
echo end of the file commands
delete a.txt
rm c.txt
rm m1.txt
rm m2.txt
cd ..
rmcol cad
ls
quit
"""
# An editor that appends a line and moves the file's time on, so cadaver sees a change.
EDITOR = """#!/bin/sh
echo "edited by cadaver" >> "$1"
touch -d "@$(( $(date +%s) + 10 ))" "$1"
"""


def results(output: str) -> list[tuple[str, str]]:
    """(verb, outcome) of every command that announced one: outcome 'ok' or the failure's reason."""
    lines = output.splitlines()
    found = []
    for i, line in enumerate(lines):
        text = line.rstrip()
        ok = text.endswith("succeeded.")
        if ok or text.endswith("failed:"):
            verb = text.removesuffix("succeeded.").removesuffix("failed:").split("`")[0].strip()
            found.append((verb, "ok" if ok else (lines[i + 1].strip() if i + 1 < len(lines) else "")))
    return found


def run_session(gateway: Gateway, folder: str, work: Path, cadaver: str) -> str:
    home = work / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1\nlogin {USER}\npassword {PASSWORD}\n")  # cadaver matches the host only
    netrc.chmod(0o600)
    (work / "local.txt").write_text("hello cadaver\n")
    (work / "second.txt").write_text("uploaded under a lock\n")
    (work / "many").mkdir()
    for name in ("m1.txt", "m2.txt"):
        (work / "many" / name).write_text(f"{name}\n")
    editor = work / "editor.sh"
    editor.write_text(EDITOR)
    editor.chmod(0o755)
    url = gateway.url + folder
    (work / "session.rc").write_text(SESSION.format(work=work, url=url))
    env = {**os.environ, "HOME": str(home), "EDITOR": str(editor), "PAGER": "cat", "LANG": "C"}
    done = subprocess.run(
        [cadaver, "-r", str(work / "session.rc"), url],
        cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.stdout


@pytest.mark.parametrize("mount", WRITABLE)
def test_every_cadaver_command(gateway: Gateway, tool: Callable[[str], str], tmp_path: Path, mount: str) -> None:
    folder = gateway.folder(mount, "cadaver")
    output = run_session(gateway, folder, tmp_path, tool("cadaver"))
    report = f"--- cadaver output ---\n{output}\n--- davgate log ---\n{gateway.log_tail()}"
    outcomes = results(output)
    failed = [(verb, why) for verb, why in outcomes if why != "ok" and NOT_OFFERED.get(verb) != why]
    assert not failed, f"cadaver commands failed: {failed}\n{report}"
    offered = {verb for verb, why in outcomes if why != "ok"}
    assert offered == set(NOT_OFFERED), f"not every extension was tried: {set(NOT_OFFERED) - offered}\n{report}"
    for forbidden in ("Terminated by signal", "could not", "Could not", "aborted", "not known"):
        assert forbidden not in output, report
    verbs = [verb for verb, why in outcomes if why == "ok"]
    for verb, times in {
        "Creating": 1, "Locking": 3, "Unlocking": 2, "Setting property on": 1, "Deleting property on": 1,
        "Copying": 1, "Moving": 1, "Deleting": 4, "Deleting collection": 1,
    }.items():  # fmt: skip
        assert verbs.count(verb) == times, f"{verb}: {verbs.count(verb)} times, not {times}\n{report}"
    assert sum(v.startswith("Uploading") for v in verbs) == 5, report  # put, mput (2), edit, put under the lock
    assert sum(v.startswith("Downloading") for v in verbs) == 4, report  # edit, get, mget (2)
    assert output.count("Listing collection") == 3, report  # ls: empty folder, cad, the folder again
    assert "Value of color is: red" in output, report
    assert "Fetching property names `a.txt': DAV: resourcetype" in output, report  # <propname/> names them all,
    assert "custom-properties/ color" in output, report  # the dead property included
    assert re.search(r"Lock token <opaquelocktoken:[^>]+>", output), report
    assert "Displaying `" in output and "Stealing locks" in output and "end of the file commands" in output, report
    assert "Connection to `127.0.0.1' closed." in output, report
    assert "edited by cadaver" in output, report  # `cat` after `edit` shows the edited content
    assert (tmp_path / "got.txt").read_text() == (tmp_path / "second.txt").read_text(), report
    assert (tmp_path / "m2.txt").read_text() == "m2.txt\n"
    assert gateway.exists(folder) and not gateway.exists(folder + "cad/"), report
    assert gateway.http("DELETE", folder).status_code == 204
