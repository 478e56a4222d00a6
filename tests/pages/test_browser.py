"""davgate's folder pages in real Chromium: list, sort, upload, make, rename, delete, and refusals.

Every action is done as a person does it (buttons, the file chooser, the
keyboard, a drop) and checked behind the server, on disk. Screenshots are
kept in each test's tmp folder for a person to look at; their paths are
printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.helpers import group_members
from tests.pages.conftest import Site

Browser = Callable[..., webdriver.Chrome]
MIB = 1024 * 1024
BIG = 100 * MIB
MARKUP_NAME = "<img src=x onerror=document.title='pwned'> &amp; <b>.txt"


# --- helpers ------------------------------------------------------------------------


def open_page(driver: webdriver.Chrome, url: str) -> None:
    """Load a folder page and wait until its script is ready."""
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "true")


def wait(driver: webdriver.Chrome, condition: Callable[[webdriver.Chrome], object], timeout: float = 60):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def names(driver: webdriver.Chrome) -> list[str]:
    """The listed names in the order shown (read in one go: the page may be replacing its rows)."""
    return driver.execute_script(
        'return Array.from(document.querySelectorAll("#listing tbody tr"), (row) => row.dataset.name);'
    )


def row(driver: webdriver.Chrome, name: str) -> WebElement:
    return next(
        r for r in driver.find_elements(By.CSS_SELECTOR, "#listing tbody tr") if r.get_attribute("data-name") == name
    )


def messages(driver: webdriver.Chrome) -> str:
    return driver.find_element(By.ID, "messages").text


def message_saying(text: str) -> Callable[[webdriver.Chrome], bool]:
    return lambda d: text in messages(d)


def answer_dialog(driver: webdriver.Chrome, text: str | None) -> None:
    """Type ``text`` into the open dialog (None: just confirm) and press Enter."""
    field = driver.switch_to.active_element
    if text is not None:
        assert field.get_attribute("id") == "dialog-input"  # the dialog put the focus there
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(text)
    field.send_keys(Keys.ENTER)


def shoot(driver: webdriver.Chrome, tmp_path: Path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    path.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def forced(driver: webdriver.Chrome, method: str, path: str) -> dict:
    """A request the page does not offer, sent from the page anyway: the server's status and answer."""
    return driver.execute_async_script(
        """const [method, path, done] = arguments;
        fetch(location.origin + path, {method, body: method === "PUT" ? "forced" : undefined})
          .then(async (r) => done({status: r.status, text: await r.text()}), (e) => done({status: 0, text: String(e)}));""",
        method,
        path,
    )


def big_file(path: Path) -> str:
    """A 100 MiB file of varied bytes; its sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for index in range(BIG // MIB):
            chunk = hashlib.sha256(str(index).encode()).digest() * (MIB // 32)
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def peak_memory(pids: list[int]) -> dict[int, int]:
    """Each process's peak resident memory (VmHWM), in bytes."""
    peaks = {}
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peaks[pid] = int(line.split()[1]) * 1024
    return peaks


def chromium_pids(profile_marker: str) -> list[int]:
    """The processes of the Chromium whose command line names ``profile_marker`` (its user data dir)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if profile_marker.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:
            continue
    return pids


# --- tests ---------------------------------------------------------------------------


def test_listing_sorts_naturally_and_escapes_names(site: Site, browser: Browser, tmp_path: Path) -> None:
    folder = site.base / "data" / "sorting"
    (folder / "sub 10").mkdir(parents=True)
    (folder / "sub 9").mkdir()
    for name, size in (("layer 2.txt", 300), ("layer 10.txt", 1), ("Layer 1.txt", 2 * MIB), (MARKUP_NAME, 20)):
        (folder / name).write_bytes(b"x" * size)
    driver = browser()
    open_page(driver, site.login_url("/data/sorting"))  # no trailing '/': redirected to the folder's own URL
    assert driver.current_url.endswith("/data/sorting/")
    assert driver.title == "sorting · davgate"
    assert names(driver) == ["sub 9", "sub 10", MARKUP_NAME, "Layer 1.txt", "layer 2.txt", "layer 10.txt"]
    assert row(driver, "Layer 1.txt").find_element(By.CSS_SELECTOR, "td.size").text == "2.0 MiB"
    assert row(driver, "layer 2.txt").find_element(By.CSS_SELECTOR, "td.size").text == "300 bytes"
    crumbs = [a.text for a in driver.find_elements(By.CSS_SELECTOR, ".crumbs a")]
    assert crumbs == ["davgate", "data", "sorting"]
    assert driver.find_element(By.CSS_SELECTOR, ".user").text == "Signed in as alice"
    assert driver.find_element(By.CSS_SELECTOR, ".badge").text == "read and write"

    markup = row(driver, MARKUP_NAME).find_element(By.CSS_SELECTOR, "td.name a")
    assert markup.text == MARKUP_NAME and markup.get_attribute("href").endswith("/" + quote(MARKUP_NAME, safe=""))
    assert not driver.find_elements(By.CSS_SELECTOR, "#listing img, #listing b") and "pwned" not in driver.title

    driver.find_element(By.CSS_SELECTOR, "button[data-sort=size]").click()
    assert names(driver) == ["sub 9", "sub 10", "layer 10.txt", MARKUP_NAME, "layer 2.txt", "Layer 1.txt"]
    assert driver.find_element(By.CSS_SELECTOR, "th.size").get_attribute("aria-sort") == "ascending"
    driver.find_element(By.CSS_SELECTOR, "button[data-sort=size]").send_keys(Keys.ENTER)  # by keyboard too
    assert names(driver)[2:] == ["Layer 1.txt", "layer 2.txt", MARKUP_NAME, "layer 10.txt"]
    driver.find_element(By.CSS_SELECTOR, "button[data-sort=name]").click()
    assert names(driver) == ["sub 9", "sub 10", MARKUP_NAME, "Layer 1.txt", "layer 2.txt", "layer 10.txt"]
    driver.find_element(By.CSS_SELECTOR, "button[data-sort=name]").click()
    assert names(driver) == ["sub 10", "sub 9", "layer 10.txt", "layer 2.txt", "Layer 1.txt", MARKUP_NAME]

    driver.find_element(By.CSS_SELECTOR, "details.connect summary").click()
    url = driver.find_element(By.ID, "dav-url").get_attribute("value")
    assert url == site.url + "/data/sorting/"
    assert url in driver.find_element(By.ID, "cmd-rclone").text and url in driver.find_element(By.ID, "cmd-davfs2").text
    shoot(driver, tmp_path, "listing")
    problems = [entry["message"] for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems  # no Content-Security-Policy violation, no script error, no missing asset
    driver.set_window_size(390, 844)
    shoot(driver, tmp_path, "listing-phone")
    assert driver.execute_script("return document.documentElement.scrollWidth") <= 390  # no sideways scrolling


def test_dispel_layers_sort_as_numbers_and_are_read_only(site: Site, browser: Browser) -> None:
    driver = browser()
    open_page(driver, site.login_url("/dispel/tiffstore/312/20181129/"))
    assert names(driver) == [str(layer) for layer in range(13)]
    assert driver.find_element(By.CSS_SELECTOR, ".badge").text == "read-only"
    assert not driver.find_elements(By.CSS_SELECTOR, "#upload-button, #new-folder, button[data-action]")
    refused = forced(driver, "PUT", "/dispel/tiffstore/312/20181129/forced.txt")
    assert refused["status"] == 403 and "read-only" in refused["text"]


def image_loaded(driver: webdriver.Chrome, element_id: str) -> Callable[[webdriver.Chrome], object]:
    script = "const i = document.getElementById(arguments[0]); return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"
    return lambda d: d.execute_script(script, element_id)


def test_dispel_levels_say_what_they_mean(site: Site, browser: Browser) -> None:
    driver = browser()
    open_page(driver, site.login_url("/dispel/tiffstore/312/"))
    assert "One window of one layer of a multi-layer TIFF." in driver.find_element(By.CSS_SELECTOR, ".dispel").text
    levels = [item.text.split("\n") for item in driver.find_elements(By.CSS_SELECTOR, ".levels li")]
    assert [level[0] for level in levels] == ["subject", "date", "layer", "grid"]
    assert levels[0][-1] == "= 312" and levels[1][-1] == "the folders here"
    here = driver.find_element(By.CSS_SELECTOR, ".levels li[aria-current=step]")
    assert here.text.split("\n")[0] == "date" and "YYYYMMDD" in here.text
    assert not driver.find_elements(By.ID, "window-form")  # the window form is the last level's


def test_dispel_window_chosen_in_the_form_and_previewed(site: Site, browser: Browser, tmp_path: Path) -> None:
    driver = browser()
    layer = "/dispel/tiffstore/312/20181129/12/"
    open_page(driver, site.login_url(layer))
    driver.execute_script("document.querySelector('.layer-preview').scrollIntoView()")
    assert wait(driver, image_loaded_by_class(".layer-preview")) == [640, 256]  # the whole layer, from its windows

    form = driver.find_element(By.ID, "window-form")
    for field, value in (("x0", "100"), ("x1", "300"), ("y0", "20"), ("y1", "120")):
        box = form.find_element(By.NAME, field)
        box.clear()
        box.send_keys(value)
    box.send_keys(Keys.ENTER)
    assert wait(driver, image_loaded(driver, "window-preview")) == [200, 100]
    url = driver.find_element(By.ID, "window-url").get_attribute("value")
    assert url == site.url + layer + "100-300-20-120.png"
    assert driver.find_element(By.ID, "window-state").text == "200 × 100 pixels"
    shoot(driver, tmp_path, "dispel-window")
    assert site.http("GET", layer + "100-300-20-120.png").content[:8] == b"\x89PNG\r\n\x1a\n"

    form.find_element(By.NAME, "x1").clear()
    form.find_element(By.NAME, "x1").send_keys("50")  # ends before it starts: the server's reason is shown
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "window-state").text.startswith("No preview: 400 Bad Request"))

    form.find_element(By.NAME, "x1").clear()
    form.find_element(By.NAME, "x1").send_keys("300")
    Select(form.find_element(By.NAME, "format")).select_by_value("tif")
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver, lambda d: d.find_element(By.ID, "window-url").get_attribute("value").endswith("/100-300-20-120.tif"))
    assert not driver.find_element(By.ID, "window-preview").is_displayed()
    assert driver.find_element(By.ID, "window-link").get_attribute("href") == url.removesuffix(".png") + ".tif"

    first = driver.find_element(By.CSS_SELECTOR, "#listing tbody tr")
    assert first.get_attribute("data-name") == "0-640-0-256.png"  # the layer fits in one listed window
    driver.execute_script("arguments[0].scrollIntoView()", first)  # thumbnails load as their rows come into view
    thumbnail = wait(driver, image_loaded_by_class("#listing tbody tr img.thumb"))
    assert thumbnail == [640 // 8, 256 // 8]  # the template's thumbnail output
    shoot(driver, tmp_path, "dispel-thumbnails")


def image_loaded_by_class(selector: str) -> Callable[[webdriver.Chrome], object]:
    script = "const i = document.querySelector(arguments[0]); return i.complete && i.naturalWidth ? [i.naturalWidth, i.naturalHeight] : null;"
    return lambda d: d.execute_script(script, selector)


def test_upload_several_files_one_of_100_mib_streamed(site: Site, browser: Browser, tmp_path: Path) -> None:
    folder = site.base / "data" / "uploads"
    folder.mkdir()
    sources = tmp_path / "sources"
    sources.mkdir()
    big = sources / "big.bin"
    expected = {"big.bin": big_file(big)}
    for name, text in (("notes 1.txt", "first\n"), ("notes 2.txt", "second\n")):
        (sources / name).write_text(text)
        expected[name] = hashlib.sha256(text.encode()).hexdigest()
    driver = browser()
    open_page(driver, site.login_url("/data/uploads/"))
    watched = chromium_pids(str(tmp_path / "profile-0")) + group_members(site.server.process.pid)
    before = peak_memory(watched)

    chooser = driver.find_element(By.ID, "upload-input")
    chooser.send_keys("\n".join(str(sources / name) for name in expected))
    wait(driver, message_saying("Uploaded 3 files."), timeout=300)
    shoot(driver, tmp_path, "uploaded")

    assert {path.name: sha256(path) for path in folder.iterdir()} == expected
    assert sorted(names(driver)) == sorted(expected)
    assert row(driver, "big.bin").find_element(By.CSS_SELECTOR, "td.size").text == "100 MiB"
    after = peak_memory(watched)
    grown = {pid: after[pid] - before[pid] for pid in before if pid in after}
    print(f"peak memory growth while uploading, by process: {grown}")
    assert grown and max(grown.values()) < BIG * 3 // 4, f"a process held the file whole: {grown}"

    chooser.send_keys(str(sources / "notes 1.txt"))  # again, without "Replace existing files"
    wait(driver, message_saying("1 of 1 uploads failed"))
    assert "notes 1.txt exists already" in driver.find_element(By.ID, "uploads").text
    (sources / "notes 1.txt").write_text("replaced\n")
    driver.find_element(By.ID, "replace").click()
    chooser.send_keys(str(sources / "notes 1.txt"))
    wait(driver, message_saying("Uploaded 1 file."))
    assert (folder / "notes 1.txt").read_text() == "replaced\n"


def test_drop_files_to_upload(site: Site, browser: Browser) -> None:
    (site.base / "data" / "dropped").mkdir()
    driver = browser()
    open_page(driver, site.login_url("/data/dropped/"))
    driver.execute_script(
        """const transfer = new DataTransfer();
        transfer.items.add(new File(["one\\n"], "one.txt"));
        transfer.items.add(new File(["two\\n"], "two.txt"));
        for (const type of ["dragenter", "dragover", "drop"]) {
          document.body.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true, cancelable: true}));
        }"""
    )
    wait(driver, message_saying("Uploaded 2 files."))
    assert (site.base / "data" / "dropped" / "one.txt").read_text() == "one\n"
    assert (site.base / "data" / "dropped" / "two.txt").read_text() == "two\n"
    assert driver.find_element(By.ID, "drop-zone").get_attribute("hidden") is not None


def test_new_folder_rename_and_delete(site: Site, browser: Browser, tmp_path: Path) -> None:
    folder = site.base / "data" / "edits"
    folder.mkdir()
    (folder / "report.txt").write_text("numbers\n")
    (folder / "taken.txt").write_text("here first\n")
    driver = browser()
    open_page(driver, site.login_url("/data/edits/"))

    driver.find_element(By.ID, "new-folder").send_keys(Keys.ENTER)  # the keyboard alone
    answer_dialog(driver, "results 2026")
    wait(driver, lambda d: "results 2026" in names(d))
    assert (folder / "results 2026").is_dir()

    row(driver, "report.txt").find_element(By.CSS_SELECTOR, "button[data-action=rename]").click()
    shoot(driver, tmp_path, "rename-dialog")
    answer_dialog(driver, "report final.txt")
    wait(driver, lambda d: "report final.txt" in names(d))
    assert (folder / "report final.txt").read_text() == "numbers\n" and not (folder / "report.txt").exists()

    row(driver, "report final.txt").find_element(By.CSS_SELECTOR, "button[data-action=rename]").click()
    answer_dialog(driver, "taken.txt")  # a name in use: refused, nothing overwritten
    wait(driver, message_saying("Could not rename report final.txt: taken.txt exists already"))
    assert (folder / "taken.txt").read_text() == "here first\n"

    row(driver, "report final.txt").find_element(By.CSS_SELECTOR, "button[data-action=rename]").click()
    answer_dialog(driver, "back\\slash.txt")  # the server refuses it, and says why
    refused = "Could not rename report final.txt: 400 Bad Request: "  # the server's own line, not its HTML
    wait(driver, message_saying(refused))
    reason = messages(driver).rsplit(refused, 1)[1].splitlines()[0]
    assert reason.startswith("Destination ") and "<" not in reason, reason
    assert sorted(p.name for p in folder.iterdir()) == ["report final.txt", "results 2026", "taken.txt"]

    row(driver, "results 2026").find_element(By.CSS_SELECTOR, "button[data-action=delete]").click()
    assert "everything in it" in driver.find_element(By.ID, "dialog-text").text
    answer_dialog(driver, None)
    wait(driver, lambda d: "results 2026" not in names(d))
    assert not (folder / "results 2026").exists()
    shoot(driver, tmp_path, "after-edits")


def test_read_only_folders_offer_nothing_and_the_server_refuses(site: Site, browser: Browser, tmp_path: Path) -> None:
    (site.base / "shared" / "team.txt").write_text("team\n")
    driver = browser()
    open_page(driver, site.login_url("/ro/"))
    assert names(driver) == ["readme.txt"]
    assert driver.find_element(By.CSS_SELECTOR, ".badge").text == "read-only"
    assert not driver.find_elements(By.CSS_SELECTOR, "#upload-button, #upload-input, #new-folder, button[data-action]")
    shoot(driver, tmp_path, "read-only")
    refused = forced(driver, "PUT", "/ro/forced.txt")
    assert refused["status"] == 403 and "/ro is read-only" in refused["text"]
    assert forced(driver, "DELETE", "/ro/readme.txt")["status"] == 403
    assert sorted(os.listdir(site.base / "ro")) == ["readme.txt"]

    open_page(driver, site.login_url("/"))  # the top lists mounts; nothing there can be renamed or deleted
    assert names(driver) == ["data", "demo", "dispel", "ro", "shared"]
    assert not driver.find_elements(By.CSS_SELECTOR, "#upload-button, button[data-action]")

    bob = browser()
    open_page(bob, site.login_url("/shared/", user="bob"))  # bob may read /shared, not write it
    assert names(bob) == ["team.txt"] and bob.find_element(By.CSS_SELECTOR, ".badge").text == "read-only"
    assert not bob.find_elements(By.CSS_SELECTOR, "#upload-button, button[data-action]")
    refused = forced(bob, "MKCOL", "/shared/forced/")
    assert refused["status"] == 403 and "write access to /shared is not granted" in refused["text"]
    assert sorted(os.listdir(site.base / "shared")) == ["team.txt"]


def test_pages_work_with_a_bearer_token(site: Site, browser: Browser) -> None:
    """A bearer-token user: whatever puts the token on the page's request (here Chromium's DevTools
    protocol, as an authenticating proxy or a header extension would) puts it on the page's own requests."""
    (site.base / "data" / "token").mkdir()
    driver = browser()
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {site.token()}"}})
    open_page(driver, site.url + "/data/token/")
    assert driver.find_element(By.CSS_SELECTOR, ".user").text == "Signed in as ee@example.org"
    driver.find_element(By.ID, "new-folder").click()
    answer_dialog(driver, "made with a token")
    wait(driver, lambda d: "made with a token" in names(d))
    assert (site.base / "data" / "token" / "made with a token").is_dir()

    reader = browser()  # a token whose scopes let it read /data only: the page offers nothing more
    reader.execute_cdp_cmd("Network.enable", {})
    scoped = site.token("storage.read:/data")
    reader.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Bearer {scoped}"}})
    open_page(reader, site.url + "/data/token/")
    assert names(reader) == ["made with a token"] and reader.find_element(By.CSS_SELECTOR, ".badge").text == "read-only"
    assert not reader.find_elements(By.CSS_SELECTOR, "#upload-button, button[data-action]")
    refused = forced(reader, "MKCOL", "/data/token/forced/")
    assert refused["status"] == 403 and "scopes do not allow" in refused["text"]
